package controlplane_test

import (
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/controlplane/store/pgtest"
	"vigie/rules/bundle"
)

// TestUnknownVersionClaimOutlivesTheProcess: an edge that reports a
// version this control plane never published is flagged "version
// inconnue", and the next publication goes past its serial, after the
// control plane restarts as well, on both store backends: the claim is in
// the store, not in the memory of the process that heard it.
func TestUnknownVersionClaimOutlivesTheProcess(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			o := cptest.Options{LongPoll: 2 * time.Second}
			if backend == "postgres" {
				o.Database, o.Schema = pgtest.Shared(t).Database(t), "ac_claims"
			}
			cp := cptest.Start(t, o)
			cp.ReportStatus(999, strings.Repeat("ab", 32))
			// Stopping writes the pending reports: what a replica heard is
			// in the store for the next one.
			cp.Restart()
			st := cp.EdgeStatus("monnet-1")
			if st["unknown_version"] != true || st["state"] != "unknown" || st["claimed_serial"] != float64(999) {
				t.Fatalf("after a restart, the edge that claimed serial 999: %v", st)
			}
			if serial := cp.Block("apres-revendication.example"); serial <= 999 {
				t.Fatalf("published serial %d, not past the claimed 999", serial)
			}
			// A version it knows ends the claim.
			_, hash := bundle.Peek(cp.Bundle(1))
			cp.ReportStatus(1, hash)
			cp.Restart()
			if st := cp.EdgeStatus("monnet-1"); st["unknown_version"] == true || st["claimed_serial"] != nil {
				t.Fatalf("after reporting a known version: %v", st)
			}
		})
	}
}
