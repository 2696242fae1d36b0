package journal

import (
	"time"
	_ "time/tzdata" // the sentence is in Paris time on any machine
)

// VerdictCrash marks the record an edge's journal appends to each chain
// when it restarts after an unclean stop (power cut, kill -9, kernel
// panic). Records appended in the last moments before the stop may not
// have reached the disk; the marker declares the interval in which they
// may have been lost: from 2 s before the last durable record of the chain
// (Time) to the restart (Time + Duration). Nothing is lost outside a
// declared interval, and nothing inside one is lost silently. The 2 s
// (segment's appendSkew) are there because records are not appended in
// the order of their times: a DNS record is stamped when its query
// arrives and appended after the upstream answers, which can take the
// upstream timeout (2 s by default), so a lost record may be stamped a
// little before the last durable one.
const VerdictCrash = "arret_brutal"

// ProtoJournal is the protocol of records the journal writes itself (gap
// and crash markers).
const ProtoJournal = "journal"

var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.UTC
	}
	return l
}()

// CrashMarker returns the marker of an unclean stop of uai's stream
// between from (the caller's start of the loss: segment passes 2 s before
// the last durable record) and the restart at to. Host
// carries the sentence people read in every rendering of the record (CSV,
// JSON, the UI).
func CrashMarker(uai string, s Stream, from, to time.Time) Record {
	if to.Before(from) {
		to = from
	}
	return Record{Stream: s, Time: from, UAI: uai, Proto: ProtoJournal, Verdict: VerdictCrash,
		Duration: to.Sub(from), Host: CrashSentence(from, to)}
}

// CrashInterval returns the interval a crash marker declares.
func (r *Record) CrashInterval() (from, to time.Time, ok bool) {
	if r.Verdict != VerdictCrash || r.Proto != ProtoJournal {
		return time.Time{}, time.Time{}, false
	}
	return r.Time, r.Time.Add(r.Duration), true
}

// CrashSentence is the French statement of a declared loss interval.
func CrashSentence(from, to time.Time) string {
	const layout = "02/01/2006 15:04:05,000"
	return "arrêt brutal\u00a0: enregistrements possiblement perdus entre le " + from.In(paris).Format(layout) +
		" et le " + to.In(paris).Format(layout) + " (heure de Paris)"
}
