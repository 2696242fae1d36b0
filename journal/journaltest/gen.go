// Package journaltest generates realistic journal traffic for tests and
// benchmarks: a school's few hundred devices browsing a Zipf-distributed
// set of sites, through the DNS filter and the proxy, with the blocks, the
// ports, the byte counts and the durations real records have. Sizes and
// compression figures are only meaningful on data like this, not on
// repeated identical records.
package journaltest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"vigie/journal"
)

// Gen produces deterministic records. Not safe for concurrent use.
type Gen struct {
	UAI     string
	rng     *rand.Rand
	zipf    *rand.Zipf
	hosts   []string
	dests   []netip.Addr
	clients []netip.Addr
	macs    []string
	nat     netip.Addr
	t       time.Time
}

var popular = []string{
	"www.google.fr", "www.google.com", "fr.wikipedia.org", "www.youtube.com", "i.ytimg.com",
	"www.lemonde.fr", "www.education.gouv.fr", "eduscol.education.fr", "www.pronote.net",
	"0671234x.index-education.net", "ent.monbureaunumerique.fr", "www.qwant.com", "www.bing.com",
	"fonts.gstatic.com", "fonts.googleapis.com", "www.gstatic.com", "ajax.googleapis.com",
	"cdn.jsdelivr.net", "www.lumni.fr", "www.canope.fr", "www.larousse.fr", "www.linternaute.fr",
	"www.geogebra.org", "scratch.mit.edu", "www.khanacademy.org", "www.france.tv", "www.arte.tv",
	"www.francetvinfo.fr", "www.ouest-france.fr", "www.dna.fr", "www.lalsace.fr", "www.meteofrance.com",
	"login.microsoftonline.com", "outlook.office365.com", "www.office.com", "teams.microsoft.com",
	"safebrowsing.googleapis.com", "ocsp.digicert.com", "connectivitycheck.gstatic.com",
	"detectportal.firefox.com", "www.instagram.com", "www.tiktok.com", "www.snapchat.com",
	"api.deezer.com", "open.spotify.com", "www.twitch.tv", "www.roblox.com", "www.miniclip.com",
}

// New returns a generator for school uai starting at start.
func New(seed uint64, uai string, start time.Time) *Gen {
	g := &Gen{UAI: uai, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), t: start, nat: netip.MustParseAddr("198.51.100.10")}
	g.hosts = append(g.hosts, popular...)
	for i := 0; len(g.hosts) < 3000; i++ {
		g.hosts = append(g.hosts, fmt.Sprintf("%s.site%d.%s", []string{"www", "cdn", "static", "api", "img"}[i%5], i/5, []string{"fr", "com", "net", "org", "eu"}[i%5]))
	}
	g.zipf = rand.NewZipf(g.rng, 1.1, 4, uint64(len(g.hosts)-1))
	for i := range g.hosts {
		g.dests = append(g.dests, netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 251)}))
		if i%7 == 0 {
			g.dests[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 253)})
		}
	}
	for i := 0; i < 400; i++ {
		g.clients = append(g.clients, netip.AddrFrom4([4]byte{10, byte(10 + i/250), byte(i % 250 / 50), byte(10 + i%50*4)}))
		g.macs = append(g.macs, fmt.Sprintf("02:00:5e:%02x:%02x:%02x", i>>8, i&0xff, (i*37)&0xff))
	}
	return g
}

// Schools is how many schools AsSchool can tell apart.
const Schools = 240

// LocalFrom is the rank from which AsSchool's sites are local.
const LocalFrom = 1500

// AsSchool makes g school k (0 <= k < Schools) of an académie, for
// searches across schools: its devices get the school's own address plan
// (10.16+k.0.0/16), its flows its own public address, and the sites of
// the long tail (from rank LocalFrom) are local to a basin of three
// schools (k/3), as a town's clubs and papers are, while the popular and
// educational sites stay common to all. Call it before the first record.
func (g *Gen) AsSchool(k int) *Gen {
	if k < 0 || k >= Schools {
		panic(fmt.Sprintf("journaltest: school %d out of [0, %d)", k, Schools))
	}
	for i := range g.clients {
		g.clients[i] = Client(k, i)
	}
	for i := LocalFrom; i < len(g.hosts); i++ {
		g.hosts[i] = LocalHost(k/3, i)
	}
	g.nat = netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + k)})
	return g
}

// LocalHost is the site of rank i (>= LocalFrom) local to basin b.
func LocalHost(b, i int) string { return fmt.Sprintf("www.local%d-b%d.fr", i, b) }

// Client is the address of device i (0 <= i < 400) of school k as
// AsSchool plans it.
func Client(k, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(16 + k), byte(i / 200), byte(10 + i%200)})
}

// Time returns the time of the next record.
func (g *Gen) Time() time.Time { return g.t }

// Next returns the next record of stream s. Consecutive records are a few
// milliseconds apart (about 5 million records over a school day).
func (g *Gen) Next(s journal.Stream) journal.Record {
	g.t = g.t.Add(time.Duration(g.rng.IntN(8000)) * time.Microsecond)
	hi := int(g.zipf.Uint64())
	host := g.hosts[hi]
	ci := g.rng.IntN(len(g.clients))
	r := journal.Record{
		Stream: s,
		Time:   g.t,
		UAI:    g.UAI,
		Client: netip.AddrPortFrom(g.clients[ci], uint16(32768+g.rng.IntN(28000))),
		Host:   host,
	}
	blocked := hi >= len(popular)-8 && hi < len(popular) || g.rng.IntN(50) == 0
	switch s {
	case journal.Connexions:
		r.MAC = g.macs[ci]
		r.NAT = netip.AddrPortFrom(g.nat, uint16(1024+g.rng.IntN(60000)))
		r.Proto = "https"
		if g.rng.IntN(10) == 0 {
			r.Proto = "http"
		}
		port := uint16(443)
		if r.Proto == "http" {
			port = 80
		}
		r.Dest = netip.AddrPortFrom(g.dests[hi], port)
		r.Duration = time.Duration(g.rng.ExpFloat64()*2e6) * time.Microsecond
		r.BytesOut = int64(600 + g.rng.IntN(4000))
		r.BytesIn = int64(g.rng.ExpFloat64() * 80000)
		if blocked {
			r.Verdict = "block"
			r.BytesIn, r.Duration = 0, 0
		} else {
			r.Verdict = "allow"
		}
	case journal.Navigation:
		switch g.rng.IntN(3) {
		case 0:
			r.Proto = "dns"
			r.QType = []string{"A", "AAAA", "HTTPS"}[g.rng.IntN(3)]
			r.RCode = "NOERROR"
			r.UpstreamLatency = time.Duration(200+g.rng.IntN(20000)) * time.Microsecond
		case 1:
			r.Proto = "https"
		default:
			r.Proto = "http"
			r.Method = "GET"
			r.URL = g.url(host)
			r.Status = 200
		}
		r.Verdict = "allow"
		if blocked {
			r.Verdict = "block"
			r.Category = []string{"adult", "games", "social_networks", "agressif"}[g.rng.IntN(4)]
			r.Reference = fmt.Sprintf("B-%06X", g.rng.IntN(1<<24))
			if r.Proto == "http" {
				r.Status = 403
			}
			if r.Proto == "dns" {
				r.RCode = "NXDOMAIN"
			}
		}
	}
	return r
}

var words = []string{
	"cours", "histoire", "geographie", "maths", "fractions", "equations", "francais", "conjugaison",
	"anglais", "verbes", "sciences", "physique", "chimie", "svt", "cellule", "volcan", "climat", "europe",
	"revolution", "moyen-age", "romains", "egypte", "poesie", "fable", "fontaine", "moliere", "hugo",
	"theoreme", "pythagore", "thales", "brevet", "exercices", "corrige", "video", "quiz", "carte",
	"article", "actualite", "sport", "football", "musique", "jeux", "recette", "meteo", "image", "photo",
}

// url makes a plausible URL: a section, a slug of a few words, an id,
// sometimes a query, so that URLs compress like real ones, not like a
// counter.
func (g *Gen) url(host string) string {
	b := make([]byte, 0, 128)
	b = append(b, "http://"...)
	b = append(b, host...)
	b = append(b, '/')
	b = append(b, words[g.rng.IntN(len(words))]...)
	b = append(b, '/')
	for i, n := 0, 2+g.rng.IntN(5); i < n; i++ {
		if i > 0 {
			b = append(b, '-')
		}
		b = append(b, words[g.rng.IntN(len(words))]...)
	}
	b = fmt.Appendf(b, "_%d.html", g.rng.IntN(10_000_000))
	if g.rng.IntN(4) == 0 {
		b = fmt.Appendf(b, "?utm_source=%s&page=%d", words[g.rng.IntN(len(words))], g.rng.IntN(20))
	}
	return string(b)
}

// Flow returns the next flow record as the edge's conntrack recorder
// writes it: one per connection of any protocol, with its NAT mapping,
// zone, counters, verdict and, for most clients, the user behind it.
func (g *Gen) Flow() journal.Record {
	g.t = g.t.Add(time.Duration(g.rng.IntN(8000)) * time.Microsecond)
	hi := int(g.zipf.Uint64())
	ci := g.rng.IntN(len(g.clients))
	r := journal.Record{
		Stream:  journal.Connexions,
		Time:    g.t,
		UAI:     g.UAI,
		Client:  netip.AddrPortFrom(g.clients[ci], uint16(32768+g.rng.IntN(28000))),
		MAC:     g.macs[ci],
		NAT:     netip.AddrPortFrom(g.nat, uint16(1024+g.rng.IntN(60000))),
		Verdict: "allow",
		Zone:    []string{"pedagogique", "wifi", "administratif"}[ci%3],
	}
	if ci%5 != 0 {
		r.User = fmt.Sprintf("eleve.%d", ci)
	}
	switch n := g.rng.IntN(20); {
	case n < 12:
		r.Proto, r.Dest = "tcp", netip.AddrPortFrom(g.dests[hi], 443)
		r.Link = "proxy"
	case n < 16:
		r.Proto, r.Dest = "udp", netip.AddrPortFrom(g.dests[hi], 53)
		r.Link = "dns"
	case n < 18:
		r.Proto, r.Dest = "udp", netip.AddrPortFrom(g.dests[hi], 123)
	default:
		r.Proto, r.Dest = "udp", netip.AddrPortFrom(g.dests[hi], uint16(1024+g.rng.IntN(60000)))
		r.Verdict, r.Reason, r.NAT = "drop", "internet."+r.Zone, netip.AddrPort{}
	}
	if r.Verdict == "allow" {
		r.Duration = time.Duration(g.rng.ExpFloat64()*2e6) * time.Microsecond
		r.BytesOut = int64(60 + g.rng.IntN(4000))
		r.BytesIn = int64(g.rng.ExpFloat64() * 80000)
	}
	return r
}
