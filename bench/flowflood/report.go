package flowflood

import (
	"fmt"
	"strings"
	"time"
)

func us(d time.Duration) string { return fmt.Sprintf("%.2f µs", float64(d)/1e3) }

// Markdown renders the ladder and the figures.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s, load average %s before the run and %s after; %s.\n\n", r.Machine, r.LoadBefore, r.LoadAfter, r.ConntrackVersion)
	b.WriteString("| step target | reached (flows/s) | sent | made | recorder saw | overruns | conntrack -E saw | CPU µs/flow: recorder (NEW) | conntrack -E | senders + kernel path | flush: destroys seen | recorder µs/destroy |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Steps {
		peer := fmt.Sprint(s.Peer)
		if s.PeerOverrun {
			peer += " (ENOBUFS)"
		}
		fmt.Fprintf(&b, "| %s | %.0f | %d | %d | %d | %d | %s | %.2f | %.2f | %.2f | %d of %d (%d overruns) | %.2f |\n",
			rateText(s.Target), s.Rate, s.Sent, s.Created, s.Recorder, s.Overruns, peer,
			float64(perFlow(s.RecorderCPU, s.Created))/1e3, float64(perFlow(s.PeerCPU, s.Created))/1e3, float64(perFlow(s.SenderCPU, s.Created))/1e3,
			s.Destroyed, s.Created, s.DestroyOverruns, float64(perFlow(s.DestroyCPU, s.Destroyed))/1e3)
	}
	fmt.Fprintf(&b, "\nHighest rate with nothing lost: recorder **%.0f flows/s**, conntrack -E %.0f flows/s (ratio %s); the senders reached %.0f flows/s at most. Target ≥ 50,000.\n",
		r.RecorderBest, r.PeerBest, ratio(r.RecorderBest, r.PeerBest), r.GeneratorMax)
	fmt.Fprintf(&b, "At the fastest step (%.0f flows/s) the recorder saw %.3f of the flows, conntrack -E %.3f.\n", r.TopRate, r.TopRecorderShare, r.TopPeerShare)
	fmt.Fprintf(&b, "CPU per flow at the step of %.0f flows/s (µs per flow = ms of CPU per second at 1,000 flows/s): recorder %s for the NEW event, %s with the destroy and the record; conntrack -E %s per NEW event printed; the kernel's path in the senders' context %s.\n",
		r.RefRate, us(r.RecorderNewCPU), us(r.RecorderFlowCPU), us(r.PeerCPU), us(r.SenderCPU))
	return b.String()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}
