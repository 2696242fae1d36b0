package export

import (
	"time"

	"vigie/journal"
)

// LossInterval is a loss interval an edge declared after an unclean stop:
// records of the chain between Debut and Fin may be missing, and the
// export says so rather than claiming a complete sequence.
type LossInterval struct {
	Seq   uint64 `json:"sequence"`
	Debut string `json:"debut"`
	Fin   string `json:"fin"`
	// Texte is the sentence shown to people ("arrêt brutal : ...").
	Texte string `json:"texte"`
}

func lossInterval(r *journal.Record, seq uint64) (LossInterval, bool) {
	from, to, ok := r.CrashInterval()
	if !ok {
		return LossInterval{}, false
	}
	return LossInterval{Seq: seq, Debut: from.In(Paris).Format(time.RFC3339Nano), Fin: to.In(Paris).Format(time.RFC3339Nano),
		Texte: journal.CrashSentence(from, to)}, true
}

func (cs *chainState) noteCrash(r *journal.Record, seq uint64) {
	if li, ok := lossInterval(r, seq); ok {
		cs.crashes = append(cs.crashes, li)
	}
}
