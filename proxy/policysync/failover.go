package policysync

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// parseRoots checks the control plane's base URLs (the first is the one
// configured as URL, the others further replicas) and drops their
// trailing slash, query and fragment: API paths follow them.
func parseRoots(urls []string) ([]string, error) {
	var roots []string
	for _, u := range urls {
		base, err := url.Parse(u)
		if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
			return nil, fmt.Errorf("sync: control plane URL %q is not an http(s) URL", u)
		}
		base.RawQuery, base.Fragment = "", ""
		roots = append(roots, strings.TrimRight(base.String(), "/"))
	}
	return roots, nil
}

// root is the control plane's base URL in use.
func (a *Agent) root() string { return a.roots[int(a.cur.Load())%len(a.roots)] }

// failover turns to the next control-plane URL, if several are configured.
func (a *Agent) failover() {
	if len(a.roots) > 1 {
		next := (int(a.cur.Load()) + 1) % len(a.roots)
		a.cur.Store(int32(next))
		a.log.Info("turning to another control plane", "url", a.roots[next])
	}
}

// backoff is exponential with "equal jitter": at least half the step, so
// retries stay spaced, plus a random half, so edges spread out.
func (a *Agent) backoff(failures int) time.Duration {
	d := a.cfg.MinBackoff
	for i := 1; i < failures && d < a.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, a.cfg.MaxBackoff)
	return d/2 + time.Duration(a.cfg.Jitter()*float64(d/2))
}
