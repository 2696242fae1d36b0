// Package export builds and verifies the requisition export: the archive
// a chef d'établissement hands over when a judicial requisition arrives.
//
// One ZIP holds, for the school and time range asked (optionally one
// client, MAC address, user or domain):
//
//	manifest.json     the query, the requisition reference and motive, who
//	                  exported and when, record counts, the SHA-256 of every
//	                  other file, and the hash-chain anchors of each chain
//	manifest.sig      the control plane's Ed25519 signature of manifest.json
//	resume.html       a one-page summary in French, to print and attach
//	connexions.csv    the records, French headers, semicolon-separated,
//	navigation.csv    UTF-8 with BOM, times ISO 8601 in Europe/Paris
//	connexions.jsonl  the same records with every field and the chain
//	navigation.jsonl  links, so that the chain can be recomputed offline
//
// and the ZIP comment carries a second signature, over every byte of the
// archive before it, so that even headers and dates cannot change.
//
// Verify checks all of it offline with the control plane's public key and
// names the first problem: a changed byte in any file, a missing or added
// file, a broken chain, a record outside the query, a count that does not
// add up.
package export

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"golang.org/x/sync/errgroup"

	"vigie/journal"
	"vigie/journal/archive"
)

// Format names this export layout in the manifest.
const Format = "vigie-export-1"

// File names inside the ZIP.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	SummaryName   = "resume.html"
)

// DataFiles are the record files, in the order they appear.
var DataFiles = []string{"connexions.csv", "connexions.jsonl", "navigation.csv", "navigation.jsonl"}

var streams = []journal.Stream{journal.Connexions, journal.Navigation}

// Request is what is asked for, by whom, and why.
type Request struct {
	UAI string
	// School is the établissement's name, for the summary.
	School   string
	From, To time.Time
	Client   netip.Addr
	MAC      string
	User     string
	Domain   string
	// Reference is the requisition's reference (procès-verbal number);
	// Motive says why the export is made. Both are required.
	Reference string
	Motive    string
	// Exporter is the login of who exports, Role their role.
	Exporter string
	Role     string
}

// Validate checks the request.
func (r *Request) Validate() error {
	switch {
	case len(r.UAI) != 8:
		return fmt.Errorf("export: UAI %q: want 8 characters (7 digits and a letter)", r.UAI)
	case r.From.IsZero() || r.To.IsZero():
		return errors.New("export: a time range (from, to) is required")
	case !r.From.Before(r.To):
		return errors.New("export: the range must start before it ends")
	case strings.TrimSpace(r.Reference) == "":
		return errors.New("export: a requisition reference is required")
	case strings.TrimSpace(r.Motive) == "":
		return errors.New("export: a motive is required")
	case r.Exporter == "":
		return errors.New("export: the exporter is required")
	case len(r.Reference) > 200 || len(r.Motive) > 2000 || len(r.Domain) > 253 || len(r.MAC) > 64 || len(r.User) > 256:
		return errors.New("export: a field is too long")
	}
	return nil
}

// Options configure the writer.
type Options struct {
	// Key signs the manifest (the control plane's key).
	Key      ed25519.PrivateKey
	Now      func() time.Time
	Academie string
	// TempDir holds the compressed files while the export is built.
	TempDir string
}

// Manifest is manifest.json.
type Manifest struct {
	Format      string           `json:"format"`
	Reference   string           `json:"reference"`
	Motif       string           `json:"motif"`
	Exportateur string           `json:"exportateur"`
	Role        string           `json:"role,omitempty"`
	CreeLe      string           `json:"cree_le"`
	Academie    string           `json:"academie,omitempty"`
	Requete     Query            `json:"requete"`
	Comptes     map[string]int64 `json:"comptes"`
	Fichiers    []File           `json:"fichiers"`
	Chaines     []ChainAnchor    `json:"chaines"`
	// Clepublique is the signing key (base64), for information: verify
	// with the key obtained from the académie, not with this one.
	ClePublique string `json:"cle_publique"`
}

// Query is the request as recorded in the manifest.
type Query struct {
	UAI           string `json:"uai"`
	Etablissement string `json:"etablissement,omitempty"`
	Debut         string `json:"debut"`
	Fin           string `json:"fin"`
	Client        string `json:"client,omitempty"`
	MAC           string `json:"mac,omitempty"`
	Utilisateur   string `json:"utilisateur,omitempty"`
	Domaine       string `json:"domaine,omitempty"`
}

// Filtered reports whether the query narrows the school's records.
func (q Query) Filtered() bool {
	return q.Client != "" || q.MAC != "" || q.Utilisateur != "" || q.Domaine != ""
}

// File is one file's fingerprint.
type File struct {
	Nom    string `json:"nom"`
	SHA256 string `json:"sha256"`
	Octets int64  `json:"octets"`
}

// ChainAnchor ties the exported records of one chain to the archive: the
// records of the period have sequence numbers in [PremierSeq, DernierSeq];
// LienAvant is the link before PremierSeq (empty when that record is no
// longer archived) and LienFin the link of DernierSeq. With no filter and
// Periode equal to Plage and to the range's width, the export is the whole
// chain segment and Verify proves it complete.
type ChainAnchor struct {
	Index      int    `json:"index"`
	Flux       string `json:"flux"`
	Chaine     string `json:"chaine"`
	PremierSeq uint64 `json:"premier_seq"`
	DernierSeq uint64 `json:"dernier_seq"`
	LienAvant  string `json:"lien_avant,omitempty"`
	LienFin    string `json:"lien_fin"`
	// Periode counts the archived records of the period, Plage those with
	// a sequence number in the range (records outside the period
	// interleave), Exportes those in this export.
	Periode  int64         `json:"enregistrements_periode"`
	Plage    int64         `json:"enregistrements_plage"`
	Exportes int64         `json:"exportes"`
	Lacunes  []archive.Gap `json:"lacunes,omitempty"`
	// ArretsBrutaux are the loss intervals the edge declared in this
	// chain over the period after unclean stops (see journal.VerdictCrash).
	ArretsBrutaux []LossInterval `json:"arrets_brutaux,omitempty"`
}

// Write builds the export of req from st into w and returns its manifest.
func Write(ctx context.Context, w io.Writer, st archive.Store, req Request, opt Options) (*Manifest, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if len(opt.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("export: no signing key")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var tf timeFormatter
	m := &Manifest{
		Format: Format, Reference: req.Reference, Motif: req.Motive, Exportateur: req.Exporter, Role: req.Role,
		CreeLe: string(tf.append(nil, opt.Now())), Academie: opt.Academie,
		Requete: Query{UAI: req.UAI, Etablissement: req.School, Debut: string(tf.append(nil, req.From)), Fin: string(tf.append(nil, req.To)),
			MAC: req.MAC, Utilisateur: req.User, Domaine: strings.ToLower(strings.TrimSuffix(req.Domain, "."))},
		Comptes:     map[string]int64{},
		ClePublique: base64.StdEncoding.EncodeToString(opt.Key.Public().(ed25519.PublicKey)),
	}
	if req.Client.IsValid() {
		m.Requete.Client = req.Client.String()
	}
	chains, err := st.Chains(ctx, req.UAI)
	if err != nil {
		return nil, err
	}
	gaps, err := st.Gaps(ctx, req.UAI)
	if err != nil {
		return nil, err
	}
	// Every chain of the school gets its index now (records refer to it
	// as they are written); those without records in the period are left
	// out of the manifest at the end.
	filtered := req.Client.IsValid() || req.Domain != "" || req.MAC != "" || req.User != ""
	states := make([]*chainState, len(chains))
	index := map[int64]int{}
	for i, c := range chains {
		states[i] = &chainState{c: c}
		index[c.Ref] = i
		if filtered {
			// The period's extent comes from the archive: the scan only
			// sees the selected records.
			sp, err := st.Span(ctx, c.Ref, req.From, req.To)
			if err != nil {
				return nil, err
			}
			states[i].span = sp
		}
	}
	tmp, err := os.MkdirTemp(opt.TempDir, "vigie-export-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	outs := map[string]*output{}
	for _, name := range DataFiles {
		if outs[name], err = newOutput(tmp, name); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, o := range outs {
			o.abort()
		}
	}()
	// The pipeline: one goroutine per stream scans the archive and
	// formats its records into 256 KiB chunks of CSV and JSON Lines,
	// handed through bounded queues to one goroutine per file that
	// hashes (SHA-256 for the manifest, CRC-32 for the ZIP) and
	// compresses them into a temporary file. Six goroutines for two
	// cores: compression is more than half of the work, and a stream
	// with most of the records still has its two files compressed beside
	// its formatting. Then, serially, the ZIP: small files, then the
	// compressed files copied raw, hashed for the archive signature on
	// another goroutine as they are written.
	counts := make([]int64, len(streams))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range streams {
		csvOut, jsonOut := outs[s.String()+".csv"], outs[s.String()+".jsonl"]
		g.Go(func() error {
			var err error
			counts[i], err = writeStream(gctx, st, req, s, index, states, filtered, csvOut, jsonOut)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// A cancellation that came with the last records scanned may have
	// found no chunk left to stop: it still ends the export.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, s := range streams {
		m.Comptes[s.String()] = counts[i]
	}
	for i, cs := range states {
		a, ok := cs.anchor(i, filtered)
		if !ok {
			continue
		}
		for _, g := range gaps {
			if g.Chain == cs.c.Ref && g.Last >= a.PremierSeq && g.First <= a.DernierSeq {
				a.Lacunes = append(a.Lacunes, archive.Gap{First: g.First, Last: g.Last, Found: g.Found})
			}
		}
		a.ArretsBrutaux = cs.crashes
		m.Chaines = append(m.Chaines, a)
	}
	for _, name := range DataFiles {
		o := outs[name]
		if err := o.finish(); err != nil {
			return nil, err
		}
		m.Fichiers = append(m.Fichiers, File{Nom: name, SHA256: hex.EncodeToString(o.sha.Sum(nil)), Octets: o.size})
	}
	summary, err := renderSummary(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(summary)
	m.Fichiers = append(m.Fichiers, File{Nom: SummaryName, SHA256: hex.EncodeToString(sum[:]), Octets: int64(len(summary))})
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	manifest = append(manifest, '\n')
	sig := base64.StdEncoding.AppendEncode(nil, ed25519.Sign(opt.Key, manifest))
	sig = append(sig, '\n')

	// The whole archive is signed too, in its comment, so that no byte
	// of it (headers, timestamps, compressed streams) can change without
	// Verify noticing: the signature covers every byte before the
	// comment, hashed as it is written (Ed25519ph: the archive can be
	// gigabytes, never held in memory).
	tw := &tailWriter{w: w, h: newAsyncHash(sha512.New()), hold: archiveSigLen}
	defer tw.h.stop()
	zw := zip.NewWriter(tw)
	if err := zw.SetComment(strings.Repeat("0", archiveSigLen)); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	modified := opt.Now()
	for _, f := range []struct {
		name string
		data []byte
	}{{ManifestName, manifest}, {SignatureName, sig}, {SummaryName, summary}} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: modified})
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	buf := make([]byte, 1<<20)
	for _, name := range DataFiles {
		if err := outs[name].copyInto(zw, modified, buf); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if tw.err != nil {
		return nil, fmt.Errorf("export: %w", tw.err)
	}
	asig, err := opt.Key.Sign(nil, tw.h.Sum(), &ed25519.Options{Hash: crypto.SHA512})
	if err != nil {
		return nil, fmt.Errorf("export: sign archive: %w", err)
	}
	if _, err := io.WriteString(w, ArchiveSigPrefix+base64.StdEncoding.EncodeToString(asig)); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return m, nil
}

// ArchiveSigPrefix starts the ZIP comment that carries the archive's
// signature: Ed25519ph (SHA-512 prehash) over every byte of the file
// before the comment.
const ArchiveSigPrefix = "vigie-archive-ed25519ph:"

// archiveSigLen is the comment's length: the prefix and a base64 signature.
var archiveSigLen = len(ArchiveSigPrefix) + base64.StdEncoding.EncodedLen(ed25519.SignatureSize)

// tailWriter passes bytes on to w and hashes them, except the last hold
// bytes written, which it keeps back: the placeholder comment, replaced
// by the signature once everything before it is hashed.
type tailWriter struct {
	w    io.Writer
	h    *asyncHash
	hold int
	tail []byte
	err  error
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n := len(p)
	if len(t.tail)+len(p) <= t.hold {
		t.tail = append(t.tail, p...)
		return n, nil
	}
	// Release what can no longer be part of the last hold bytes.
	excess := len(t.tail) + len(p) - t.hold
	if k := min(excess, len(t.tail)); k > 0 {
		t.pass(t.tail[:k])
		t.tail = append(t.tail[:0], t.tail[k:]...)
		excess -= k
	}
	if excess > 0 {
		t.pass(p[:excess])
		p = p[excess:]
	}
	t.tail = append(t.tail, p...)
	return n, t.err
}

func (t *tailWriter) pass(b []byte) {
	if t.err != nil {
		return
	}
	t.h.Write(b)
	_, t.err = t.w.Write(b)
}

// writeStream formats one stream's records into its two outputs. It runs
// on its own goroutine and hands filled buffers to the outputs'
// compressors: the scan, decoding and formatting of a stream take one core
// while the compressors take what is left.
func writeStream(ctx context.Context, st archive.Store, req Request, s journal.Stream, index map[int64]int, states []*chainState, filtered bool, csvOut, jsonOut *output) (int64, error) {
	var tf timeFormatter
	csvBuf := append(csvOut.buffer(), csvHeader(s)...)
	jsonBuf := jsonOut.buffer()
	var n int64
	// A record's JSON line is written up to its own link at once; the
	// line stays open until the next record says whether a run of
	// consecutive sequence numbers ends there (then it carries its link).
	var held struct {
		ok       bool
		seq      uint64
		chain    int
		anchored bool
		link     journal.Hash
	}
	closeHeld := func(endOfRun bool) {
		var link *journal.Hash
		if endOfRun || !held.anchored {
			link = &held.link
		}
		jsonBuf = appendJSONEnd(jsonBuf, link)
	}
	q := archive.Query{UAI: req.UAI, From: req.From, To: req.To, Streams: []journal.Stream{s}, Client: req.Client, Domain: req.Domain, MAC: req.MAC, User: req.User}
	if !filtered {
		q.Outside = func(c archive.Chain, _ uint64) { states[index[c.Ref]].outside++ }
	}
	var (
		raw     rawRecord
		rec     journal.Record
		dec     journal.Decoder
		lastRef int64 = -1
		idx     int
	)
	err := st.Scan(ctx, q, func(c archive.Chain, r *archive.Stored) error {
		// Most payloads take the view; the others (an IPv6 zone, or a
		// damaged payload, which DecodeRecord then names) a Record.
		fast := raw.decode(r.Payload)
		if !fast {
			if err := dec.Decode(r.Payload, &rec); err != nil {
				return fmt.Errorf("export: archived record %d of chain %s: %w", r.Seq, c.ID, err)
			}
			rec.Seq = r.Seq
		}
		if c.Ref != lastRef {
			i, ok := index[c.Ref]
			if !ok {
				return fmt.Errorf("export: record %d of an unknown chain", r.Seq)
			}
			idx, lastRef = i, c.Ref
		}
		cs := states[idx]
		if fast && string(raw.text[rawVerdict]) == journal.VerdictCrash && string(raw.text[rawProto]) == journal.ProtoJournal {
			// Rare: decode the marker whole for its interval.
			var m journal.Record
			if err := dec.Decode(r.Payload, &m); err == nil {
				cs.noteCrash(&m, r.Seq)
			}
		} else if !fast {
			cs.noteCrash(&rec, r.Seq)
		}
		contiguous := held.ok && held.chain == idx && r.Seq == held.seq+1
		if held.ok {
			closeHeld(!contiguous)
		}
		var prev journal.Hash
		hasPrev, anchored := false, true
		if !contiguous {
			// A new run: it starts from the link before it, when the
			// archive still has it.
			switch {
			case r.Seq == 1:
				prev, hasPrev = journal.Genesis(c.UAI, c.Stream, c.ID), true
			case r.BeforeKnown:
				// A search gave it: no block to decode again.
				prev, hasPrev = r.Before, true
			default:
				p, ok, err := st.Get(ctx, c.Ref, r.Seq-1)
				if err != nil {
					return err
				}
				prev, hasPrev, anchored = p.Link, ok, ok
			}
		}
		var prevp *journal.Hash
		if hasPrev {
			prevp = &prev
		}
		if fast {
			csvBuf = tf.appendRawCSV(csvBuf, &raw, r.Seq)
			jsonBuf = tf.appendRawJSONOpen(jsonBuf, &raw, r.Seq, idx, prevp)
		} else {
			csvBuf = tf.appendCSV(csvBuf, &rec)
			jsonBuf = tf.appendJSONOpen(jsonBuf, &rec, idx, prevp)
		}
		held.ok, held.seq, held.chain, held.link, held.anchored = true, r.Seq, idx, r.Link, anchored
		if len(csvBuf) >= chunkSize {
			csvOut.write(csvBuf)
			csvBuf = csvOut.buffer()
		}
		if len(jsonBuf) >= chunkSize {
			jsonOut.write(jsonBuf)
			jsonBuf = jsonOut.buffer()
		}
		if cs.exported == 0 {
			cs.first, cs.before, cs.beforeKnown = r.Seq, prev, hasPrev
		}
		cs.exported++
		cs.last, cs.lastLink = r.Seq, r.Link
		n++
		if n&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if held.ok {
		closeHeld(true)
	}
	csvOut.write(csvBuf)
	jsonOut.write(jsonBuf)
	return n, nil
}

// chainState follows one chain through an export.
type chainState struct {
	c    archive.Chain
	span archive.Span // filtered exports only
	// What the scan saw (unfiltered exports: the whole period).
	exported, outside int64
	first, last       uint64
	before, lastLink  journal.Hash
	beforeKnown       bool
	crashes           []LossInterval
}

// anchor is the chain's entry in the manifest; ok is false when the
// chain has no record in the period.
func (cs *chainState) anchor(i int, filtered bool) (ChainAnchor, bool) {
	a := ChainAnchor{Index: i, Flux: cs.c.Stream.String(), Chaine: cs.c.ID.String(), Exportes: cs.exported}
	if filtered {
		sp := cs.span
		if sp.Count == 0 {
			return a, false
		}
		a.PremierSeq, a.DernierSeq, a.LienFin, a.Periode, a.Plage = sp.FirstSeq, sp.LastSeq, sp.Last.String(), sp.Count, sp.InSeqRange
		if sp.BeforeKnown {
			a.LienAvant = sp.Before.String()
		}
		return a, true
	}
	if cs.exported == 0 {
		return a, false
	}
	a.PremierSeq, a.DernierSeq, a.LienFin = cs.first, cs.last, cs.lastLink.String()
	a.Periode, a.Plage = cs.exported, cs.exported+cs.outside
	if cs.beforeKnown {
		a.LienAvant = cs.before.String()
	}
	return a, true
}

// output compresses one file of the ZIP into a temporary file on its own
// goroutine, hashing it on the way, so that the four files are produced in
// parallel from one pass over the archive and then copied into the ZIP
// without compressing again.
type output struct {
	name       string
	f          *os.File
	bw         *bufio.Writer
	zw         *flate.Writer
	sha        hash.Hash
	crc        hash.Hash32
	size       int64
	chunks     chan []byte
	free       chan []byte
	done       chan struct{}
	err        error
	compressed int64
	allocated  int // chunks made (by buffer)
}

func newOutput(dir, name string) (*output, error) {
	f, err := os.CreateTemp(dir, name+"-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	// klauspost's deflate at its fastest level: the same format, about
	// 1.6 times the speed of compress/flate with a slightly better ratio
	// on these files; compression is most of an export's CPU.
	bw := bufio.NewWriterSize(f, 256<<10)
	zw, _ := flate.NewWriter(bw, flate.BestSpeed)
	o := &output{name: name, f: f, bw: bw, zw: zw, sha: sha256.New(), crc: crc32.NewIEEE(),
		chunks: make(chan []byte, maxChunks-2), free: make(chan []byte, maxChunks), done: make(chan struct{})}
	go o.run()
	return o, nil
}

func (o *output) run() {
	defer close(o.done)
	for c := range o.chunks {
		if o.err == nil {
			o.sha.Write(c)
			o.crc.Write(c)
			o.size += int64(len(c))
			_, o.err = o.zw.Write(c)
		}
		select {
		case o.free <- c[:0]:
		default:
		}
	}
	if o.err == nil {
		o.err = o.zw.Close()
	}
	if o.err == nil {
		o.err = o.bw.Flush()
	}
}

// write hands a chunk over; the caller must not touch it afterwards.
func (o *output) write(c []byte) {
	if len(c) > 0 {
		o.chunks <- c
	}
}

// chunkSize is how much formatted text a stream fills before handing it
// to a compressor. With at most two chunks queued, one compressing and
// one filling per output, an export holds about 5 MiB of text in flight
// whatever its size.
const chunkSize = 256 << 10

// maxChunks is how many chunks an output ever has: two queued, one
// compressing, one filling. They go round; none is garbage.
const maxChunks = 4

// buffer returns an empty chunk to fill (only the stream's goroutine
// calls it).
func (o *output) buffer() []byte {
	select {
	case b := <-o.free:
		return b
	default:
	}
	if o.allocated < maxChunks {
		o.allocated++
		// Room for the line that crosses chunkSize.
		return make([]byte, 0, chunkSize+chunkSize/4)
	}
	// The compressor returns every chunk it took, even after an error.
	return <-o.free
}

func (o *output) finish() error {
	close(o.chunks)
	<-o.done
	o.chunks = nil
	if o.err != nil {
		return fmt.Errorf("export: %s: %w", o.name, o.err)
	}
	st, err := o.f.Stat()
	if err != nil {
		return fmt.Errorf("export: %s: %w", o.name, err)
	}
	o.compressed = st.Size()
	return nil
}

func (o *output) abort() {
	if o.chunks != nil {
		close(o.chunks)
		<-o.done
		o.chunks = nil
	}
	o.f.Close()
}

func (o *output) copyInto(zw *zip.Writer, modified time.Time, buf []byte) error {
	fw, err := zw.CreateRaw(&zip.FileHeader{Name: o.name, Method: zip.Deflate, Modified: modified,
		CRC32: o.crc.Sum32(), CompressedSize64: uint64(o.compressed), UncompressedSize64: uint64(o.size)})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := o.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	// Large reads and writes: fewer system calls than io.Copy's 32 KiB
	// (the struct hides the file's WriteTo, which would use those).
	if _, err := io.CopyBuffer(fw, struct{ io.Reader }{o.f}, buf); err != nil {
		return fmt.Errorf("export: %s: %w", o.name, err)
	}
	return nil
}
