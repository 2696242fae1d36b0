package api

import (
	"time"

	"vigie/controlplane/store"
)

// statusEvents are the changes between what an edge last told the control
// plane (prev) and what it tells now (next), kept as its history for the
// yearly review: the edges table keeps only the latest state, and a
// review must say which versions a school applied and when, how long its
// edge was out of contact, which bundles it refused and what software it
// ran. An outage is seen when the edge calls again: a silence longer than
// offlineAfter (the API's own "online" rule) between two calls.
func statusEvents(id string, prev, next store.EdgeStatus, offlineAfter time.Duration) []store.EdgeEvent {
	var ev []store.EdgeEvent
	if !prev.LastSeen.IsZero() && offlineAfter > 0 && next.LastSeen.Sub(prev.LastSeen) > offlineAfter {
		ev = append(ev, store.EdgeEvent{Edge: id, Kind: store.EventOutage, At: prev.LastSeen, Until: next.LastSeen})
	}
	if next.AppliedSerial != 0 && (next.AppliedSerial != prev.AppliedSerial || next.AppliedHash != prev.AppliedHash) {
		ev = append(ev, store.EdgeEvent{Edge: id, Kind: store.EventApplied, At: next.LastSeen, Serial: next.AppliedSerial})
	}
	if next.LastError != "" && next.LastError != prev.LastError {
		ev = append(ev, store.EdgeEvent{Edge: id, Kind: store.EventRefused, At: next.LastSeen, Serial: next.AppliedSerial, Detail: next.LastError})
	}
	if next.Software != "" && next.Software != prev.Software {
		ev = append(ev, store.EdgeEvent{Edge: id, Kind: store.EventSoftware, At: next.LastSeen, Detail: next.Software})
	}
	return ev
}

// offlineAfter is how long an edge may stay silent and still be online:
// two long-poll periods and some slack.
func offlineAfter(longPoll time.Duration) time.Duration { return 2*longPoll + 10*time.Second }
