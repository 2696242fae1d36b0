package dns

import (
	"fmt"
	"strings"

	"vigie/rules/normalize"
)

// Engines whose safe-search endpoint can be forced by DNS: their names are
// answered with a CNAME to the endpoint, which the upstream resolves. The
// endpoints serve certificates valid for the original names, so HTTPS keeps
// working. Targets can be overridden in the configuration (SafeSearchTargets)
// should an engine move its endpoint.
const (
	EngineGoogle          = "google"
	EngineBing            = "bing"
	EngineDuckDuckGo      = "duckduckgo"
	EngineQwant           = "qwant"
	EngineYouTubeStrict   = "youtube_strict"
	EngineYouTubeModerate = "youtube_moderate"
)

// defaultSafeTargets are the endpoints published by each engine.
// Qwant's is the strict-filter host documented for network administrators;
// check it against Qwant's documentation when deploying, and override it in
// the configuration if it moved (a wrong target fails closed: the name stops
// resolving, the engine is unusable, nothing unsafe gets through).
var defaultSafeTargets = map[string]string{
	EngineGoogle:          "forcesafesearch.google.com",
	EngineBing:            "strict.bing.com",
	EngineDuckDuckGo:      "safe.duckduckgo.com",
	EngineQwant:           "safeqwant.com",
	EngineYouTubeStrict:   "restrict.youtube.com",
	EngineYouTubeModerate: "restrictmoderate.youtube.com",
}

// safeNames are the exact names rewritten, by engine. Google's many country
// domains are matched by shape instead (isGoogleSearch).
var safeNames = map[string]string{
	"www.bing.com":             EngineBing,
	"bing.com":                 EngineBing,
	"duckduckgo.com":           EngineDuckDuckGo,
	"www.duckduckgo.com":       EngineDuckDuckGo,
	"start.duckduckgo.com":     EngineDuckDuckGo,
	"html.duckduckgo.com":      EngineDuckDuckGo,
	"lite.duckduckgo.com":      EngineDuckDuckGo,
	"www.qwant.com":            EngineQwant,
	"qwant.com":                EngineQwant,
	"api.qwant.com":            EngineQwant,
	"www.youtube.com":          "youtube",
	"youtube.com":              "youtube",
	"m.youtube.com":            "youtube",
	"youtubei.googleapis.com":  "youtube",
	"youtube.googleapis.com":   "youtube",
	"www.youtube-nocookie.com": "youtube",
}

// safeSearch answers which endpoint a name must be rewritten to.
type safeSearch struct {
	targets map[string]string
}

func newSafeSearch(overrides map[string]string) (*safeSearch, error) {
	s := &safeSearch{targets: map[string]string{}}
	for k, v := range defaultSafeTargets {
		s.targets[k] = v
	}
	for k, v := range overrides {
		if _, ok := defaultSafeTargets[k]; !ok {
			return nil, fmt.Errorf("dns: safesearch target for unknown engine %q (known: google, bing, duckduckgo, qwant, youtube_strict, youtube_moderate)", k)
		}
		h, err := normalize.Host(v)
		if err != nil || !strings.Contains(h, ".") {
			return nil, fmt.Errorf("dns: safesearch target %q for %s is not a host name", v, k)
		}
		s.targets[k] = h
	}
	return s, nil
}

// target returns the endpoint name must be answered with, or "". youtube is
// the profile's restricted mode (strict or moderate).
func (s *safeSearch) target(name, youtube string) string {
	engine, ok := safeNames[name]
	switch {
	case ok && engine == "youtube":
		if youtube == "moderate" {
			return s.targets[EngineYouTubeModerate]
		}
		return s.targets[EngineYouTubeStrict]
	case ok:
		return s.targets[engine]
	case isGoogleSearch(name):
		return s.targets[EngineGoogle]
	}
	return ""
}

// isGoogleSearch matches google.TLD and www.google.TLD for every shape of
// Google's country domains: google.com, google.fr, google.cat, google.co.uk,
// google.com.br. Matching the shape rather than a copy of Google's list of
// domains means a new country domain is covered the day it appears; a name
// of that shape that is not Google's only loses its own resolution.
func isGoogleSearch(name string) bool {
	rest, ok := strings.CutPrefix(name, "www.")
	if !ok {
		rest = name
	}
	tld, ok := strings.CutPrefix(rest, "google.")
	if !ok {
		return false
	}
	if tld == "com" || tld == "cat" || isCC(tld) {
		return true
	}
	if sld, cc, ok := strings.Cut(tld, "."); ok && (sld == "co" || sld == "com") && isCC(cc) {
		return true
	}
	return false
}

func isCC(s string) bool {
	return len(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z'
}
