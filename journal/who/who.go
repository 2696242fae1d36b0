// Package who answers the usual requisition: "public address A, source
// port P, at time T: who was it?". It finds, in the archive, the
// connection records whose translated source (NAT) was A:P at T, give or
// take a tolerance, then the client, MAC and user they name, and the
// navigation records of that client around that time.
//
// A flow the edge itself opened (the proxy's or the DNS filter's
// upstream connection, zone "edge") names the edge, not a pupil: the
// proxy's own records of connections to the same destination during that
// flow are then given as the candidates, since the proxy may reuse one
// upstream connection for several clients.
package who

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
)

// Query is one requisition's question.
type Query struct {
	Addr netip.Addr
	// Port 0 matches any port.
	Port uint16
	At   time.Time
	// Tolerance widens the instant on both sides (default 2 s): clocks
	// of the requesting operator and the edge differ.
	Tolerance time.Duration
	// Lookback is how long before At a matching flow may have started
	// (default 6 h): flows are journalled at their end with their start
	// time.
	Lookback time.Duration
	// Around is the window of navigation records given around the flow
	// (default 5 min on each side).
	Around time.Duration
	// Schools are the schools to search (the caller's scope).
	Schools []string
}

func (q *Query) defaults() {
	if q.Tolerance <= 0 {
		q.Tolerance = 2 * time.Second
	}
	if q.Lookback <= 0 {
		q.Lookback = 6 * time.Hour
	}
	if q.Around <= 0 {
		q.Around = 5 * time.Minute
	}
}

// Record is a journal record as the answer shows it.
type Record struct {
	Seq      uint64     `json:"sequence"`
	Stream   string     `json:"flux"`
	Time     time.Time  `json:"horodatage"`
	End      time.Time  `json:"fin,omitzero"`
	Proto    string     `json:"protocole,omitempty"`
	Client   string     `json:"client,omitempty"`
	MAC      string     `json:"mac,omitempty"`
	User     string     `json:"utilisateur,omitempty"`
	NAT      string     `json:"nat,omitempty"`
	Dest     string     `json:"destination,omitempty"`
	Host     string     `json:"hote,omitempty"`
	URL      string     `json:"url,omitempty"`
	Verdict  string     `json:"verdict,omitempty"`
	Category string     `json:"categorie,omitempty"`
	Zone     string     `json:"zone,omitempty"`
	Reason   string     `json:"motif_rejet,omitempty"`
	Link     string     `json:"lien_flux,omitempty"`
	BytesIn  int64      `json:"octets_recus,omitempty"`
	BytesOut int64      `json:"octets_emis,omitempty"`
	ClientIP netip.Addr `json:"-"`
}

func view(r *journal.Record) Record {
	v := Record{Seq: r.Seq, Stream: r.Stream.String(), Time: r.Time, Proto: r.Proto, MAC: r.MAC, User: r.User,
		Host: r.Host, URL: r.URL, Verdict: r.Verdict, Category: r.Category, Zone: r.Zone, Reason: r.Reason, Link: r.Link,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, ClientIP: r.Client.Addr()}
	if r.Duration > 0 {
		v.End = r.Time.Add(r.Duration)
	}
	if r.Client.Addr().IsValid() {
		v.Client = r.Client.String()
	}
	if r.NAT.Addr().IsValid() {
		v.NAT = r.NAT.String()
	}
	if r.Dest.Addr().IsValid() {
		v.Dest = r.Dest.String()
	}
	return v
}

// Match is one connection that had the address and port.
type Match struct {
	UAI  string `json:"uai"`
	Flow Record `json:"flux"`
	// Candidates are the proxy's records that may have used an upstream
	// flow of the edge (empty for a pupil's own flow).
	Candidates []Record `json:"candidats,omitempty"`
	// Navigation holds the navigation records of the client(s) around
	// the flow.
	Navigation []Record `json:"navigation,omitempty"`
}

// Client is the client address the match leads to (invalid when the
// flow is the edge's own and no candidate or several were found).
func (m *Match) Client() netip.Addr {
	if m.Flow.Zone != "edge" {
		return m.Flow.ClientIP
	}
	var c netip.Addr
	for _, r := range m.Candidates {
		if c.IsValid() && r.ClientIP != c {
			return netip.Addr{}
		}
		c = r.ClientIP
	}
	return c
}

// Answer is what Find found.
type Answer struct {
	Addr      string        `json:"adresse"`
	Port      uint16        `json:"port,omitempty"`
	At        time.Time     `json:"instant"`
	Tolerance time.Duration `json:"tolerance_ns"`
	Matches   []Match       `json:"correspondances"`
	// Scanned counts the connection records looked at: those of the
	// archive's blocks whose filter says they may hold the address (the
	// others are not read).
	Scanned int64 `json:"enregistrements_examines"`
}

// maxMatches bounds an answer (a port-less query over a busy address).
const maxMatches = 1000

// Find answers q from st.
func Find(ctx context.Context, st archive.Store, q Query) (*Answer, error) {
	q.defaults()
	if !q.Addr.IsValid() {
		return nil, fmt.Errorf("who: an address is required")
	}
	q.Addr = q.Addr.Unmap()
	ans := &Answer{Addr: q.Addr.String(), Port: q.Port, At: q.At, Tolerance: q.Tolerance, Matches: []Match{}}
	lo, hi := q.At.Add(-q.Tolerance), q.At.Add(q.Tolerance)
	var dec journal.Decoder
	for _, uai := range q.Schools {
		var found []journal.Record
		// The archive selects the blocks by their NAT filter and by the
		// end of their flows (a NAT port is reused many times a day:
		// only the blocks with a flow still open at the instant are
		// read), and gives the records with that address (and port);
		// the check below stays, so that the answer does not rest on
		// the store's filters.
		err := st.Scan(ctx, archive.Query{UAI: uai, From: q.At.Add(-q.Lookback), To: hi.Add(time.Microsecond), Streams: []journal.Stream{journal.Connexions},
			NAT: q.Addr, NATPort: q.Port, EndFrom: lo},
			func(c archive.Chain, s *archive.Stored) error {
				ans.Scanned++
				nat, ok := journal.PeekNAT(s.Payload)
				if !ok || nat.Addr().Unmap() != q.Addr || (q.Port != 0 && nat.Port() != q.Port) {
					return nil
				}
				var r journal.Record
				if err := dec.Decode(s.Payload, &r); err != nil {
					return fmt.Errorf("who: record %d of %s: %w", s.Seq, uai, err)
				}
				r.Seq = s.Seq
				end := r.Time.Add(max(r.Duration, 0))
				if r.Time.After(hi) || end.Before(lo) || len(found) >= maxMatches {
					return nil
				}
				found = append(found, r)
				return nil
			})
		if err != nil {
			return nil, err
		}
		for i := range found {
			m := Match{UAI: uai, Flow: view(&found[i])}
			if found[i].Zone == "edge" && found[i].Link == "proxy" {
				if err := candidates(ctx, st, uai, &found[i], q.Tolerance, &m, &dec); err != nil {
					return nil, err
				}
			}
			if err := navigation(ctx, st, uai, &m, q.Around); err != nil {
				return nil, err
			}
			ans.Matches = append(ans.Matches, m)
		}
	}
	return ans, nil
}

// candidates adds the proxy's records of connections to the same
// destination during an upstream flow of the edge.
func candidates(ctx context.Context, st archive.Store, uai string, f *journal.Record, tol time.Duration, m *Match, dec *journal.Decoder) error {
	end := f.Time.Add(max(f.Duration, 0))
	// The proxy journals a connection at its end with its start time,
	// which is before its upstream flow starts.
	from, to := f.Time.Add(-time.Hour), end.Add(tol)
	return st.Scan(ctx, archive.Query{UAI: uai, From: from, To: to, Streams: []journal.Stream{journal.Connexions}},
		func(c archive.Chain, s *archive.Stored) error {
			var r journal.Record
			if err := dec.Decode(s.Payload, &r); err != nil {
				return fmt.Errorf("who: record %d of %s: %w", s.Seq, uai, err)
			}
			r.Seq = s.Seq
			if r.Zone != "" || r.Lost != 0 || r.Dest != f.Dest || len(m.Candidates) >= maxMatches {
				return nil
			}
			rend := r.Time.Add(max(r.Duration, 0))
			if rend.Before(f.Time.Add(-tol)) || r.Time.After(end.Add(tol)) {
				return nil
			}
			m.Candidates = append(m.Candidates, view(&r))
			return nil
		})
}

// navigation adds the navigation records of the match's client(s).
func navigation(ctx context.Context, st archive.Store, uai string, m *Match, around time.Duration) error {
	var clients []netip.Addr
	if m.Flow.Zone == "edge" {
		for _, c := range m.Candidates {
			if !slices.Contains(clients, c.ClientIP) {
				clients = append(clients, c.ClientIP)
			}
		}
	} else if m.Flow.ClientIP.IsValid() {
		clients = append(clients, m.Flow.ClientIP)
	}
	end := m.Flow.Time
	if !m.Flow.End.IsZero() {
		end = m.Flow.End
	}
	for _, c := range clients {
		err := st.Scan(ctx, archive.Query{UAI: uai, From: m.Flow.Time.Add(-around), To: end.Add(around), Client: c, Streams: []journal.Stream{journal.Navigation}},
			func(ch archive.Chain, s *archive.Stored) error {
				if len(m.Navigation) >= maxMatches {
					return nil
				}
				var r journal.Record
				if err := journal.DecodeRecord(s.Payload, &r); err != nil {
					return fmt.Errorf("who: record %d of %s: %w", s.Seq, uai, err)
				}
				r.Seq = s.Seq
				m.Navigation = append(m.Navigation, view(&r))
				return nil
			})
		if err != nil {
			return err
		}
	}
	return nil
}
