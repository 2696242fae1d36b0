package httpproxy

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/rules"
)

// exchange is one request (or one tunnel) from its head to its journal
// record: what was asked, what the policy said, what came back.
type exchange struct {
	c     *conn
	entry entry
	start time.Time

	method, host, url string
	// proto is the journal's protocol: http, https (spliced or
	// intercepted) or connect.
	proto string
	dest  netip.AddrPort

	gen      *generation.Generation
	verdict  rules.Verdict
	blocked  bool
	outcome  outcome
	category string
	ref      string
	status   int

	toClient, toOrigin atomic.Int64
	upstreamLatency    time.Duration

	// noJournal skips the navigation record of input that was no request
	// at all (garbage on the TLS port); the connection record remains.
	noJournal bool
	// silent exchanges leave neither record nor count: the block pages
	// answered inside a tunnel intercepted only to show them, whose
	// refusal the tunnel's own exchange records.
	silent   bool
	finished bool
	// journaled is set once the refusal's record was made durable before
	// its page left (see journalRefusal): finish must not write it again.
	journaled bool
}

func (p *Proxy) newExchange(c *conn, e entry, proto string) *exchange {
	return &exchange{c: c, entry: e, start: p.now(), proto: proto}
}

// finish counts x and writes its navigation record, once.
func (p *Proxy) finish(x *exchange) {
	if x.finished || x.silent {
		return
	}
	x.finished = true
	d := p.now().Sub(x.start)
	toClient, toOrigin := x.toClient.Load(), x.toOrigin.Load()
	p.m.requests[x.entry][x.outcome].Inc()
	if x.outcome == outcomeBlock {
		p.m.blockedBy.Inc(x.category)
	}
	p.m.duration[x.entry].Observe(d.Seconds())
	p.m.bytesToClient[x.entry].Add(float64(toClient))
	p.m.bytesToOrigin[x.entry].Add(float64(toOrigin))
	if x.noJournal || x.journaled {
		return
	}
	r := p.getRecord()
	p.fillRecord(x, r, d, toClient, toOrigin)
	p.putRecord(r)
}

// fillRecord writes x's navigation record into r.
func (p *Proxy) fillRecord(x *exchange, r *journal.Record, d time.Duration, toClient, toOrigin int64) {
	r.Stream = journal.Navigation
	r.Time = x.start
	r.UAI = p.cfg.UAI
	if x.c != nil {
		r.Client = x.c.client
	}
	r.Proto = x.proto
	r.Dest = x.dest
	r.Duration = d
	r.BytesIn, r.BytesOut = toClient, toOrigin
	r.Host, r.URL, r.Method = x.host, x.url, x.method
	r.Status = x.status
	r.Verdict = x.verdict.Action.String()
	r.Category = x.category
	if r.Category == "" {
		r.Category = x.verdict.Category
	}
	r.Reference = x.ref
	r.UpstreamLatency = x.upstreamLatency
}

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

// recordConn writes the Connexions record of a client connection that
// closed: every entry point journals its connections the same way.
func (p *Proxy) recordConn(c *conn) {
	r := p.getRecord()
	r.Stream = journal.Connexions
	r.Time = c.start
	r.UAI = p.cfg.UAI
	r.Client = c.client
	r.Proto = c.entry.defaultProto()
	if pr := c.proto.Load(); pr != nil {
		r.Proto = *pr
	}
	if d := c.dest.Load(); d != nil {
		r.Dest = *d
	} else if c.orig.IsValid() {
		r.Dest = c.orig
	}
	r.Duration = p.now().Sub(c.start)
	r.BytesIn = c.toClient.Load()
	r.BytesOut = c.fromClient.Load()
	p.putRecord(r)
}

// setDest says where the connection's traffic went, for its record.
func (c *conn) setDest(d netip.AddrPort, proto string) {
	c.dest.Store(&d)
	c.proto.Store(&proto)
}

func (e entry) defaultProto() string {
	switch e {
	case entryTransparentHTTPS:
		return "https"
	}
	return "http"
}

func (p *Proxy) getRecord() *journal.Record {
	if r, ok := p.records.Get().(*journal.Record); ok {
		return r
	}
	return new(journal.Record)
}

// putRecord appends r and recycles it: a Sink must not keep the pointer.
func (p *Proxy) putRecord(r *journal.Record) {
	p.journal.Append(r)
	*r = journal.Record{}
	p.records.Put(r)
}

func (x *exchange) String() string {
	return fmt.Sprintf("%s %s %s", x.entry, x.method, x.host)
}
