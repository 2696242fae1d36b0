package policysync

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/rules/bundle"
)

type metrics struct {
	polls   *prometheus.CounterVec
	refused *prometheus.CounterVec
	bytes   prometheus.Counter
	applied prometheus.Gauge
	last    prometheus.Gauge
}

// Outcomes of a poll and reasons for refusing a bundle: the label values
// of vigie_sync_polls_total and vigie_sync_refused_total, all known in
// advance so that each series exists at zero from the start.
var (
	pollResults    = []string{"error", "nothing_new", "new_version", "still_refused"}
	refusalReasons = []string{reasonSignature, reasonDecode, reasonOlder, reasonApply}
)

const (
	// reasonSignature: the manifest or bundle is not signed by any of
	// the pinned académie keys.
	reasonSignature = "signature"
	// reasonDecode: malformed (truncated, corrupt, a section that does
	// not match its hash, an unreadable delta answer).
	reasonDecode = "decode"
	// reasonOlder: a serial older than the one in force.
	reasonOlder = "older"
	// reasonApply: the edge's Apply refused it (a firewall the kernel
	// refuses, a ruleset that does not load).
	reasonApply = "apply"
)

// badBundle tells a bundle that fails verification from a transfer that
// failed: the first is reported to the control plane.
func badBundle(err error) bool {
	for _, e := range []error{bundle.ErrSignature, bundle.ErrHash, bundle.ErrCorrupt, bundle.ErrTruncated, bundle.ErrMagic, bundle.ErrVersion, errMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errMismatch marks a section whose bytes do not match the hash the
// signed table gives.
var errMismatch = errors.New("content does not match its hash")

// reason classifies a refusal for vigie_sync_refused_total.
func reason(err error) string {
	if errors.Is(err, bundle.ErrSignature) {
		return reasonSignature
	}
	return reasonDecode
}

// errRefused marks a bundle that arrived but could not be applied.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }
func (e errRefused) Unwrap() error { return e.err }

// refuse remembers a refused bundle so that it is not fetched again at
// each backoff step: the next polls wait for a newer serial until
// RetryBad passes. A bundle refused for its signature is remembered by
// the ETag it came with as well, and never downloaded again (see bad).
func (a *Agent) refuse(why string, serial uint64, hash, etag string) {
	a.m.refused.WithLabelValues(why).Inc()
	a.bad.serial, a.bad.hash, a.bad.until = serial, hash, a.now().Add(a.cfg.RetryBad)
	a.bad.etag = ""
	if why == reasonSignature {
		a.bad.etag = etag
	}
}

// refused counts and remembers a refused bundle (see refuse), records the
// error and reports it; it returns the error as errRefused.
func (a *Agent) refused(ctx context.Context, serial uint64, hash string, fallback bool, why string,
	badSerial uint64, badHash, etag string, err error) error {
	if badHash == "" {
		// Unreadable: name it by the serial and ETag the answer came
		// with, so that the next polls wait for a newer one.
		badHash = etag
		if badHash == "" {
			badHash = "?"
		}
	}
	a.refuse(why, badSerial, badHash, etag)
	err = errRefused{err}
	a.fail(ctx, serial, hash, fallback, err)
	return err
}

// fail records an error, and reports it when the control plane answered:
// a report to a control plane that is down would only delay the retry.
func (a *Agent) fail(ctx context.Context, serial uint64, hash string, fallback bool, err error) {
	a.setStatus(func(s *Status) { s.LastError = err.Error() })
	var refused errRefused
	if ctx.Err() == nil && (errors.As(err, &refused) || errors.Is(err, errAnswered)) {
		a.report(ctx, serial, hash, fallback, err.Error())
	}
}

// errAnswered marks errors the control plane itself returned.
var errAnswered = errors.New("the control plane answered")
