// Command csvgen writes journal/export/csv_gen.go: the column headers of
// the export's two CSV files and both functions that write a row, one from
// a decoded journal.Record, one from the view of a payload (rawRecord).
// The columns are listed once, below; each kind of column says how either
// source writes it. A shared table walked at run time cost 20 to 46 % of
// the formatting time (an indirect call and a switch per field); generated
// code is the hand-written code, with one source of truth.
//
// Run it with go generate in journal/export; the test beside it fails
// while csv_gen.go is not what it would write.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"slices"
	"strings"
)

// kind is how a column's value is written from each source.
type kind int

const (
	timeCol    kind = iota // the record's time, Paris, microseconds
	textCol                // a text field, quoted when needed
	addrCol                // the address of an address and port
	portCol                // the port of an address and port
	secondsCol             // a duration in seconds with microseconds
	intCol                 // a number, 0 written
	intNZCol               // a number, 0 left empty
	endCol                 // the end of a flow: time plus duration, empty without duration
	seqCol                 // the record's sequence number
)

// column is one CSV column: its French header, its kind and the
// journal.Record field it shows. The view's field follows from the
// Record's name (rawUAI for a text field, v.client for Client...).
type column struct {
	header string
	kind   kind
	field  string
	// v2 marks a field a version 1 payload does not have: the view, which
	// reads version 1 payloads only, leaves the column empty.
	v2 bool
}

// who and last are the columns both files start and end with: when,
// where from and who; then what the stream records; then the count of
// records lost before this one and its sequence number.
var (
	who = []column{
		{"Horodatage", timeCol, "Time", false},
		{"UAI", textCol, "UAI", false},
		{"Adresse client", addrCol, "Client", false},
		{"Port client", portCol, "Client", false},
		{"Adresse MAC", textCol, "MAC", false},
		{"Utilisateur", textCol, "User", false},
	}
	last = []column{
		{"Enregistrements perdus", intNZCol, "Lost", false},
		{"Séquence", seqCol, "Seq", false},
	}
)

var connexions = slices.Concat(who, []column{
	{"Adresse NAT", addrCol, "NAT", false},
	{"Port NAT", portCol, "NAT", false},
	{"Protocole", textCol, "Proto", false},
	{"Adresse destination", addrCol, "Dest", false},
	{"Port destination", portCol, "Dest", false},
	{"Nom d'hôte", textCol, "Host", false},
	{"Durée (s)", secondsCol, "Duration", false},
	{"Octets reçus", intCol, "BytesIn", false},
	{"Octets émis", intCol, "BytesOut", false},
	{"Verdict", textCol, "Verdict", false},
	{"Fin", endCol, "Duration", false},
	{"Zone", textCol, "Zone", true},
	{"Motif du rejet", textCol, "Reason", true},
	{"Lien", textCol, "Link", true},
}, last)

var navigation = slices.Concat(who, []column{
	{"Protocole", textCol, "Proto", false},
	{"Nom d'hôte", textCol, "Host", false},
	{"URL", textCol, "URL", false},
	{"Méthode", textCol, "Method", false},
	{"Type DNS", textCol, "QType", false},
	{"Réponse DNS", textCol, "RCode", false},
	{"Statut HTTP", intNZCol, "Status", false},
	{"Verdict", textCol, "Verdict", false},
	{"Catégorie", textCol, "Category", false},
	{"Référence de blocage", textCol, "Reference", false},
	{"Zone", textCol, "Zone", true},
}, last)

// source is one of the two things a row is written from.
type source int

const (
	fromRecord source = iota
	fromView
)

// lowerFirst is the view's name of a Record field: Client → client,
// NAT → nat, BytesIn → bytesIn.
func lowerFirst(s string) string {
	if strings.ToUpper(s) == s {
		return strings.ToLower(s)
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// writes are the statements that write each kind of column: from a
// journal.Record ({r} is the Record's field, r.Client) and from the view
// ({v} is the view's field, v.client; {raw} its text index, rawUAI).
var writes = map[kind][2]string{
	timeCol:    {"dst = f.append(dst, {r})", "dst = f.appendMicros(dst, v.time)"},
	textCol:    {"dst = appendCSVField(dst, {r})", "dst = v.appendCSVText(dst, {raw})"},
	addrCol:    {"dst = appendAddr(dst, {r}.Addr())", "dst = appendRawAddr(dst, &{v})"},
	portCol:    {"dst = appendPort(dst, {r})", "dst = appendRawPort(dst, &{v})"},
	secondsCol: {"dst = appendSeconds(dst, {r})", "dst = appendMicrosAsSeconds(dst, {v})"},
	intCol:     {"dst = strconv.AppendInt(dst, {r}, 10)", "dst = strconv.AppendInt(dst, {v}, 10)"},
	intNZCol:   {"dst = appendIntNZ(dst, int64({r}))", "dst = appendIntNZ(dst, {v})"},
	endCol: {
		"// The end of a flow, so that a requisition's time can be checked\n// against the whole flow without arithmetic.\nif r.Duration > 0 {\ndst = f.appendEnd(dst, r.Time.Add(r.Duration))\n}",
		"if v.duration > 0 {\ndst = f.appendEnd(dst, time.UnixMicro(v.time+v.duration))\n}",
	},
	seqCol: {"dst = strconv.AppendUint(dst, r.Seq, 10)", "dst = strconv.AppendUint(dst, seq, 10)"},
}

// code is the statement that writes c's value from src ("" for nothing).
func (c column) code(src source) string {
	if src == fromView && c.v2 {
		return ""
	}
	w, ok := writes[c.kind]
	if !ok {
		panic(fmt.Sprintf("csvgen: column %q: unknown kind %d", c.header, c.kind))
	}
	return strings.NewReplacer("{r}", "r."+c.field, "{v}", "v."+lowerFirst(c.field), "{raw}", "raw"+c.field).Replace(w[src])
}

// writer accumulates a function body, folding the separators between
// values (and before empty ones) into one append.
type writer struct {
	b    *bytes.Buffer
	seps int
}

func (w *writer) sep() { w.seps++ }

func (w *writer) flush() {
	args := make([]string, 0, w.seps)
	for i := 0; i < w.seps; i++ {
		args = append(args, "csvSep")
	}
	if len(args) > 0 {
		fmt.Fprintf(w.b, "dst = append(dst, %s)\n", strings.Join(args, ", "))
	}
	w.seps = 0
}

// columns writes cols from src; first is false when a column was written
// before them (a separator comes first).
func (w *writer) columns(cols []column, src source, first bool) {
	for i, c := range cols {
		if i > 0 || !first {
			w.sep()
		}
		if code := c.code(src); code != "" {
			w.flush()
			w.b.WriteString(code + "\n")
		}
	}
}

// same reports whether two columns are written alike from both sources.
func same(a, b column) bool { return a == b }

// row writes the body of one row writer: the columns both streams share
// at the start and the end written once, the others by stream.
func row(b *bytes.Buffer, src source, stream string) {
	pre := 0
	for pre < min(len(connexions), len(navigation)) && same(connexions[pre], navigation[pre]) {
		pre++
	}
	suf := 0
	for suf < min(len(connexions), len(navigation))-pre && same(connexions[len(connexions)-1-suf], navigation[len(navigation)-1-suf]) {
		suf++
	}
	w := &writer{b: b}
	w.columns(connexions[:pre], src, true)
	w.flush()
	fmt.Fprintf(b, "if %s == journal.Connexions {\n", stream)
	w.columns(connexions[pre:len(connexions)-suf], src, pre == 0)
	w.flush()
	b.WriteString("} else {\n")
	w.columns(navigation[pre:len(navigation)-suf], src, pre == 0)
	w.flush()
	b.WriteString("}\n")
	w.columns(navigation[len(navigation)-suf:], src, false)
	w.flush()
	b.WriteString("return append(dst, '\\r', '\\n')\n")
}

func headers(b *bytes.Buffer, name string, cols []column) {
	fmt.Fprintf(b, "%s = []string{", name)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%q", c.header)
	}
	b.WriteString("}\n")
}

// generate returns csv_gen.go, formatted.
func generate() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`// Code generated by journal/export/internal/csvgen; DO NOT EDIT.
// The columns are listed in internal/csvgen/main.go: change them there and
// run go generate.

package export

import (
	"strconv"
	"time"

	"vigie/journal"
)

// Column headers of the CSV files, in order.
var (
`)
	headers(&b, "ConnexionsHeader", connexions)
	headers(&b, "NavigationHeader", navigation)
	b.WriteString(`)

// appendCSV writes the CSV row of a decoded record.
func (f *timeFormatter) appendCSV(dst []byte, r *journal.Record) []byte {
`)
	row(&b, fromRecord, "r.Stream")
	b.WriteString(`}

// appendRawCSV is appendCSV for a view (seq is the record's sequence
// number, which the payload does not hold).
func (f *timeFormatter) appendRawCSV(dst []byte, v *rawRecord, seq uint64) []byte {
`)
	row(&b, fromView, "v.stream")
	b.WriteString("}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("csvgen: %w\n%s", err, b.Bytes())
	}
	return out, nil
}

func main() {
	out := flag.String("out", "csv_gen.go", "file to write")
	flag.Parse()
	src, err := generate()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
