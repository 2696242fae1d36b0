package httpproxy

import (
	"context"
	"time"

	"vigie/journal"
)

// refusalWait bounds how long a block page waits for its record's group
// commit. A healthy disk commits within a few milliseconds; past this the
// disk is failing and the page goes out without its reference.
const refusalWait = 2 * time.Second

// journalRefusal writes x's record before its block page is sent and
// waits until the journal has it on disk, so that the reference the page
// shows always exists in the journal, even if the edge is killed the next
// instant. The record is the one finish would have written, with the
// page's status and the time elapsed so far. It reports whether the
// record is durable (always true for a sink that cannot tell).
func (p *Proxy) journalRefusal(x *exchange, status int) bool {
	if x.noJournal || x.journaled || x.silent {
		// A silent page's refusal is its tunnel's, journalled by intercept.
		return true
	}
	x.status = status
	x.journaled = true
	r := p.getRecord()
	p.fillRecord(x, r, p.now().Sub(x.start), x.toClient.Load(), x.toOrigin.Load())
	defer func() {
		*r = journal.Record{}
		p.records.Put(r)
	}()
	ds, ok := p.journal.(journal.DurableSink)
	if !ok {
		p.journal.Append(r)
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), refusalWait)
	defer cancel()
	if err := ds.AppendDurable(ctx, r); err != nil {
		p.log.Error("http: refusal record not durable, page sent without its reference", "ref", x.ref, "err", err)
		return false
	}
	return true
}
