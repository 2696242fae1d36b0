package auth

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// failedLogins gathers failed and refused sign-ins between two writes of
// the audit log. A flood of wrong passwords then costs one audit entry per
// interval, not one per attempt: the hash chain cannot be bloated, and
// what was tried (which logins, from where, how often) is still recorded.
type failedLogins struct {
	mu      sync.Mutex
	m       map[failKey]*FailedLogin
	omitted int
}

type failKey struct{ login, remote, reason string }

// FailedLogin is one line of an aggregated login.failed audit entry.
type FailedLogin struct {
	Login  string    `json:"login"`
	Remote string    `json:"remote"`
	Reason string    `json:"reason"`
	Count  int       `json:"count"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
}

// maxFailKeys bounds the distinct (login, address, reason) lines kept per
// interval; beyond it attempts are only counted.
const maxFailKeys = 200

func (f *failedLogins) add(login, remote, reason string, now time.Time) {
	if len(login) > 64 {
		login = login[:64] + "…"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[failKey]*FailedLogin{}
	}
	k := failKey{login, remote, reason}
	e, ok := f.m[k]
	if !ok {
		if len(f.m) >= maxFailKeys {
			f.omitted++
			return
		}
		e = &FailedLogin{Login: login, Remote: remote, Reason: reason, First: now}
		f.m[k] = e
	}
	e.Count++
	e.Last = now
}

// take empties the aggregate and returns its lines, busiest first.
func (f *failedLogins) take() ([]FailedLogin, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FailedLogin, 0, len(f.m))
	for _, e := range f.m {
		out = append(out, *e)
	}
	omitted := f.omitted
	f.m, f.omitted = nil, 0
	slices.SortFunc(out, func(a, b FailedLogin) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Login+a.Remote, b.Login+b.Remote)
	})
	return out, omitted
}

// FlushFailedLogins writes what failed since the last flush as one
// login.failed audit entry (none when nothing failed). One login from one
// address reads like a single event; anything more lists each line.
func (s *Service) FlushFailedLogins(ctx context.Context) error {
	lines, omitted := s.failed.take()
	if len(lines) == 0 && omitted == 0 {
		return nil
	}
	total := omitted
	for _, l := range lines {
		total += l.Count
	}
	e := &audit.Entry{Time: s.now(), Actor: "anonymous", Action: "login.failed", Target: "logins"}
	if len(lines) == 1 && omitted == 0 {
		l := lines[0]
		e.Actor, e.Target, e.Remote = l.Login, "user/"+l.Login, l.Remote
	}
	e.After = auditJSON(map[string]any{"attempts": total, "lines": lines, "omitted": omitted})
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, e) })
}

// Run writes the failed sign-ins every FailedLoginAudit until ctx ends,
// then once more.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.FailedLoginAudit)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := s.FlushFailedLogins(ctx); err != nil {
				s.cfg.Log.Error("auth: audit failed logins", "err", err)
			}
			// Every replica prunes: deleting what another already
			// deleted costs nothing.
			if _, err := s.fails.PruneLoginFailures(ctx, s.now().Add(-failureHistory)); err != nil {
				s.cfg.Log.Warn("auth: prune failed logins", "err", err)
			}
		case <-ctx.Done():
			if err := s.FlushFailedLogins(context.WithoutCancel(ctx)); err != nil {
				s.cfg.Log.Error("auth: audit failed logins", "err", err)
			}
			return
		}
	}
}
