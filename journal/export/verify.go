package export

import (
	"archive/zip"
	"bufio"
	"bytes"
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
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"vigie/journal"
)

// Problem is the first thing Verify found wrong, naming the file and, for
// records, the line.
type Problem struct {
	File   string
	Line   int64
	Reason string
}

func (p *Problem) Error() string {
	switch {
	case p.File == "":
		return "export: " + p.Reason
	case p.Line > 0:
		return fmt.Sprintf("export: %s, line %d: %s", p.File, p.Line, p.Reason)
	}
	return fmt.Sprintf("export: %s: %s", p.File, p.Reason)
}

func problem(file string, line int64, format string, args ...any) *Problem {
	return &Problem{File: file, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// Result is what a successful verification established.
type Result struct {
	Manifest *Manifest
	// Records counts the verified records by stream.
	Records map[string]int64
	// Complete is set when the export provably holds every record of
	// each chain over the period (no filter, no gap, no interleaving).
	Complete bool
	// Unanchored counts records that start a run whose previous link is
	// no longer archived: their content is covered by the signature, not
	// by the chain.
	Unanchored int64
	// Losses are the loss intervals declared by crash markers among the
	// verified records: "arrêt brutal : enregistrements possiblement
	// perdus entre ... et ...".
	Losses []StreamLoss
}

// StreamLoss is a declared loss interval of one stream.
type StreamLoss struct {
	Flux string `json:"flux"`
	LossInterval
}

// Limits that keep a hostile archive from exhausting memory.
const (
	maxManifest = 16 << 20
	maxLine     = 1 << 20
)

// VerifyFile verifies the export at path.
func VerifyFile(path string, pub ed25519.PublicKey) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return Verify(f, st.Size(), pub)
}

// Verify checks an export completely: the manifest's signature, every
// file's SHA-256, every record's chain link, that each record answers the
// query, that the CSV files say what the JSON Lines files say, and that
// the counts add up. It returns the first problem as a *Problem.
func Verify(r io.ReaderAt, size int64, pub ed25519.PublicKey) (*Result, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("export: the public key is not an Ed25519 key")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, problem("", 0, "not a readable ZIP archive: %v", err)
	}
	files := map[string]*zip.File{}
	want := append([]string{ManifestName, SignatureName, SummaryName}, DataFiles...)
	for _, f := range zr.File {
		if !contains(want, f.Name) {
			return nil, problem(f.Name, 0, "unexpected file in the archive (added after the export)")
		}
		if files[f.Name] != nil {
			return nil, problem(f.Name, 0, "appears twice in the archive")
		}
		files[f.Name] = f
	}
	for _, name := range want {
		if files[name] == nil {
			return nil, problem(name, 0, "missing from the archive")
		}
	}
	manifest, err := readSmall(files[ManifestName], maxManifest)
	if err != nil {
		return nil, err
	}
	sigText, err := readSmall(files[SignatureName], 1024)
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, problem(SignatureName, 0, "not a base64 Ed25519 signature")
	}
	if !ed25519.Verify(pub, manifest, sig) {
		return nil, problem(SignatureName, 0, "the signature does not match manifest.json with this public key: the manifest or its signature was changed, or the export was signed by another key")
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, problem(ManifestName, 0, "unreadable: %v", err)
	}
	if m.Format != Format {
		return nil, problem(ManifestName, 0, "format %q, this verifier reads %q", m.Format, Format)
	}
	digests := map[string]File{}
	for _, f := range m.Fichiers {
		if _, dup := digests[f.Nom]; dup || !contains(want[2:], f.Nom) {
			return nil, problem(ManifestName, 0, "lists %q unexpectedly", f.Nom)
		}
		digests[f.Nom] = f
	}
	for _, name := range want[2:] {
		if _, ok := digests[name]; !ok {
			return nil, problem(ManifestName, 0, "does not list %s", name)
		}
	}
	q, err := parseQuery(m.Requete)
	if err != nil {
		return nil, problem(ManifestName, 0, "query: %v", err)
	}
	anchors := map[int]*ChainAnchor{}
	for i := range m.Chaines {
		a := &m.Chaines[i]
		if anchors[a.Index] != nil {
			return nil, problem(ManifestName, 0, "chain index %d appears twice", a.Index)
		}
		anchors[a.Index] = a
	}
	res := &Result{Manifest: &m, Records: map[string]int64{}, Complete: !m.Requete.Filtered()}

	// Every file, byte for byte.
	if err := checkDigest(files[SummaryName], digests[SummaryName], nil); err != nil {
		return nil, err
	}
	for _, s := range streams {
		csvName, jsonName := s.String()+".csv", s.String()+".jsonl"
		if err := checkDigest(files[csvName], digests[csvName], nil); err != nil {
			return nil, err
		}
		v := &streamVerifier{s: s, q: q, m: &m, anchors: anchors, name: jsonName, res: res, csv: sha256.New()}
		v.csv.Write(csvHeader(s))
		if err := checkDigest(files[jsonName], digests[jsonName], v.line); err != nil {
			return nil, err
		}
		if err := v.finish(); err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(v.csv.Sum(nil)); got != digests[csvName].SHA256 {
			return nil, problem(csvName, 0, "does not hold the same records as %s", jsonName)
		}
	}
	// Last, the container: every byte outside the files' contents.
	if err := checkArchiveSignature(r, size, zr.Comment, pub); err != nil {
		return nil, err
	}
	return res, nil
}

// checkArchiveSignature verifies the signature in the ZIP comment over
// every byte before it.
func checkArchiveSignature(r io.ReaderAt, size int64, comment string, pub ed25519.PublicKey) error {
	if !strings.HasPrefix(comment, ArchiveSigPrefix) || len(comment) != archiveSigLen {
		return problem("", 0, "the archive's own signature (ZIP comment) is missing or malformed: the ZIP was rewritten")
	}
	sig, err := base64.StdEncoding.DecodeString(comment[len(ArchiveSigPrefix):])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return problem("", 0, "the archive's own signature (ZIP comment) is malformed")
	}
	n := size - int64(len(comment))
	end := make([]byte, len(comment))
	if _, err := r.ReadAt(end, n); err != nil || string(end) != comment {
		return problem("", 0, "bytes follow the archive's signature: the ZIP was altered")
	}
	h := sha512.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, n)); err != nil {
		return problem("", 0, "cannot read the archive: %v", err)
	}
	if err := ed25519.VerifyWithOptions(pub, h.Sum(nil), sig, &ed25519.Options{Hash: crypto.SHA512}); err != nil {
		return problem("", 0, "bytes of the ZIP outside the files' contents (headers, dates, compressed data) were changed: the archive's signature does not verify")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func readSmall(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, problem(f.Name, 0, "cannot be read: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, problem(f.Name, 0, "damaged: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, problem(f.Name, 0, "larger than %d bytes", limit)
	}
	return data, nil
}

// checkDigest streams a file, comparing its SHA-256 and size with the
// manifest; line, when set, sees each line as it passes.
func checkDigest(f *zip.File, want File, line func(n int64, b []byte) error) error {
	rc, err := f.Open()
	if err != nil {
		return problem(f.Name, 0, "cannot be read: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	var size int64
	br := bufio.NewReaderSize(io.TeeReader(rc, h), 256<<10)
	var n int64
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		size += int64(len(b))
		if errors.Is(err, bufio.ErrBufferFull) {
			if line != nil {
				if long = append(long, b...); len(long) > maxLine {
					return problem(f.Name, n+1, "line longer than %d bytes", maxLine)
				}
			}
			continue
		}
		if len(b) > 0 && line != nil {
			n++
			if long != nil {
				b = append(long, b...)
				long = nil
			}
			if err == nil || errors.Is(err, io.EOF) {
				if lerr := line(n, b); lerr != nil {
					// A changed byte shows first as a bad record: say so
					// only if the file is intact, else report the change.
					io.Copy(io.Discard, br)
					if hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
						return problem(f.Name, 0, "SHA-256 does not match the manifest: the file was changed")
					}
					return lerr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return problem(f.Name, 0, "damaged: %v", err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 || size != want.Octets {
		return problem(f.Name, 0, "SHA-256 does not match the manifest: the file was changed")
	}
	return nil
}

type query struct {
	uai      string
	from, to time.Time
	client   netip.Addr
	mac      string
	user     string
	domain   string
}

func parseQuery(q Query) (query, error) {
	var out query
	var err error
	out.uai, out.mac, out.user, out.domain = q.UAI, q.MAC, q.Utilisateur, q.Domaine
	if out.from, err = parseTime(q.Debut); err != nil {
		return out, err
	}
	if out.to, err = parseTime(q.Fin); err != nil {
		return out, err
	}
	if q.Client != "" {
		if out.client, err = netip.ParseAddr(q.Client); err != nil {
			return out, err
		}
	}
	return out, nil
}

// streamVerifier checks the records of one JSON Lines file.
type streamVerifier struct {
	s       journal.Stream
	q       query
	m       *Manifest
	anchors map[int]*ChainAnchor
	name    string
	res     *Result
	csv     hash.Hash
	tf      timeFormatter
	ch      *journal.Chainer
	buf     []byte

	started  bool
	chain    int
	seq      uint64
	link     journal.Hash
	anchored bool
	hadLink  bool
	lastLine int64
	counts   map[int]int64
	first    map[int]uint64
	runs     map[int]int
}

func (v *streamVerifier) line(n int64, b []byte) error {
	if v.ch == nil {
		v.ch = journal.NewChainer()
		v.counts, v.first, v.runs = map[int]int64{}, map[int]uint64{}, map[int]int{}
	}
	fail := func(format string, args ...any) error { return problem(v.name, n, format, args...) }
	rec, j, err := decodeJSONRecord(b, v.s)
	if err != nil {
		return fail("unreadable record: %v", err)
	}
	idx := *j.Chaine
	a := v.anchors[idx]
	if a == nil || a.Flux != v.s.String() {
		return fail("chain %d is not a %s chain of the manifest", idx, v.s)
	}
	chainID, err := journal.ParseChainID(a.Chaine)
	if err != nil {
		return problem(ManifestName, 0, "chain %d: %v", idx, err)
	}
	// The record answers the query.
	switch {
	case rec.UAI != v.q.uai:
		return fail("record of school %q in an export of %s", rec.UAI, v.q.uai)
	case rec.Time.Before(v.q.from) || !rec.Time.Before(v.q.to):
		return fail("record time %s is outside the period", j.Horodatage)
	case v.q.client.IsValid() && rec.Client.Addr() != v.q.client:
		return fail("record of client %s in an export for %s", rec.Client.Addr(), v.q.client)
	case v.q.mac != "" && !strings.EqualFold(rec.MAC, v.q.mac):
		return fail("record of MAC %q in an export for %s", rec.MAC, v.q.mac)
	case v.q.user != "" && rec.User != v.q.user:
		return fail("record of user %q in an export for %s", rec.User, v.q.user)
	case v.q.domain != "" && !inDomain(rec.Host, v.q.domain):
		return fail("record for host %q in an export for domain %s", rec.Host, v.q.domain)
	case rec.Seq < a.PremierSeq || rec.Seq > a.DernierSeq:
		return fail("sequence %d is outside the chain's range %d-%d", rec.Seq, a.PremierSeq, a.DernierSeq)
	}
	// Order: chain by chain, each record once, in sequence order.
	if v.started && (idx < v.chain || (idx == v.chain && rec.Seq <= v.seq)) {
		return fail("record %d of chain %d is out of order or repeated", rec.Seq, idx)
	}
	contiguous := v.started && idx == v.chain && rec.Seq == v.seq+1
	if v.started && !contiguous && !v.hadLink {
		return problem(v.name, v.lastLine, "the run of records ending here carries no link to check it by")
	}
	var prev journal.Hash
	anchored := true
	switch {
	case j.LienPrecedent != nil:
		if prev, err = journal.ParseHash(*j.LienPrecedent); err != nil {
			return fail("lien_precedent: %v", err)
		}
		if contiguous && prev != v.link {
			return fail("lien_precedent does not match the previous record: a record was changed")
		}
	case contiguous:
		prev = v.link
	default:
		anchored = false
	}
	if anchored && rec.Seq == 1 && prev != journal.Genesis(v.q.uai, v.s, chainID) {
		return fail("the chain's first record does not start from its genesis")
	}
	if anchored && rec.Seq == a.PremierSeq && a.LienAvant != "" && prev.String() != a.LienAvant {
		return fail("the first record does not follow the manifest's lien_avant")
	}
	v.buf = journal.AppendRecord(v.buf[:0], &rec)
	var link journal.Hash
	if anchored {
		link = v.ch.Link(prev, rec.Seq, v.buf)
	}
	if j.Lien != nil {
		given, err := journal.ParseHash(*j.Lien)
		if err != nil {
			return fail("lien: %v", err)
		}
		if anchored && given != link {
			return fail("record %d does not match its chain link: it was changed after it was written", rec.Seq)
		}
		link = given
	} else if !anchored {
		return fail("record %d starts a run without lien_precedent or lien", rec.Seq)
	}
	if !anchored {
		v.res.Unanchored++
	}
	if rec.Seq == a.DernierSeq && link.String() != a.LienFin {
		return fail("the chain's last record does not end with the manifest's lien_fin")
	}
	if !contiguous {
		v.runs[idx]++
	}
	if _, ok := v.first[idx]; !ok {
		v.first[idx] = rec.Seq
	}
	v.counts[idx]++
	v.started, v.chain, v.seq, v.link, v.anchored, v.hadLink, v.lastLine = true, idx, rec.Seq, link, anchored, j.Lien != nil, n
	v.res.Records[v.s.String()]++
	if li, ok := lossInterval(&rec, rec.Seq); ok {
		v.res.Losses = append(v.res.Losses, StreamLoss{Flux: v.s.String(), LossInterval: li})
	}
	v.csv.Write(v.tf.appendCSV(v.buf[:0], &rec))
	return nil
}

func inDomain(host, domain string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == domain || strings.HasSuffix(host, "."+domain)
}

func (v *streamVerifier) finish() error {
	if v.started && !v.hadLink {
		return problem(v.name, v.lastLine, "the last run of records carries no link to check it by")
	}
	var total int64
	for _, a := range v.m.Chaines {
		if a.Flux != v.s.String() {
			continue
		}
		i := a.Index
		got := v.counts[i]
		total += got
		if got != a.Exportes {
			return problem(v.name, 0, "%d records of chain %d, the manifest says %d: records were removed or added", got, i, a.Exportes)
		}
		if !v.m.Requete.Filtered() && a.Exportes != a.Periode {
			return problem(ManifestName, 0, "chain %d: %d records exported of %d in the period, with no filter", i, a.Exportes, a.Periode)
		}
		width := a.DernierSeq - a.PremierSeq + 1
		if len(a.Lacunes) > 0 || a.Periode != a.Plage || uint64(a.Plage) != width || v.runs[i] != 1 || v.first[i] != a.PremierSeq {
			v.res.Complete = false
		}
	}
	if total != v.m.Comptes[v.s.String()] {
		return problem(v.name, 0, "%d records, the manifest counts %d", total, v.m.Comptes[v.s.String()])
	}
	return nil
}
