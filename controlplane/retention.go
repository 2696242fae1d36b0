package controlplane

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"vigie/journal"
	"vigie/journal/archive"
)

// RetentionConfig is how long the archive keeps each stream. The
// académie sets it; defaults: connexions one year (décret 2021-1362),
// navigation six months. Neither may exceed one year.
type RetentionConfig struct {
	Connexions Days `yaml:"connexions,omitempty"`
	Navigation Days `yaml:"navigation,omitempty"`
}

// Days is a duration written in days ("183d") or as a Go duration
// ("4392h").
type Days time.Duration

// UnmarshalYAML reads "183d" or a Go duration.
func (d *Days) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: a duration like 183d or 4392h: %w", n.Line, err)
	}
	s = strings.TrimSpace(s)
	if v, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(v)
		if err != nil || days <= 0 {
			return fmt.Errorf("line %d: %q is not a positive number of days", n.Line, s)
		}
		*d = Days(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a duration like 183d or 4392h", n.Line, s)
	}
	*d = Days(v)
	return nil
}

func (d Days) String() string {
	if time.Duration(d)%(24*time.Hour) == 0 {
		return strconv.Itoa(int(time.Duration(d)/(24*time.Hour))) + "d"
	}
	return time.Duration(d).String()
}

// archive returns the retention with defaults applied.
func (r RetentionConfig) archive() archive.Retention {
	out := archive.Retention{Connexions: time.Duration(r.Connexions), Navigation: time.Duration(r.Navigation)}
	if out.Connexions <= 0 {
		out.Connexions = journal.DefaultConnexionsRetention
	}
	if out.Navigation <= 0 {
		out.Navigation = journal.DefaultNavigationRetention
	}
	return out
}

// check refuses a retention past the legal maximum, naming the field.
func (r RetentionConfig) check() error {
	a := r.archive()
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"retention.connexions", a.Connexions}, {"retention.navigation", a.Navigation}} {
		if f.v > journal.MaxRetention {
			return fmt.Errorf("%s: %s is more than the legal maximum of one year (365d); a legal hold keeps records longer when a requisition needs it",
				f.name, Days(f.v))
		}
	}
	if a.Navigation > a.Connexions {
		return fmt.Errorf("retention.navigation: %s is longer than retention.connexions (%s): browsing data is kept at most as long as connection data",
			Days(a.Navigation), Days(a.Connexions))
	}
	return nil
}
