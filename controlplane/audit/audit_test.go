package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func chain(n int) []Entry {
	var out []Entry
	t0 := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		e := Entry{Time: t0.Add(time.Duration(i) * time.Second), Actor: "rssi", Role: "rssi",
			Action: "list.entries.add", Target: "list/academie-bloque",
			After: json.RawMessage(`{"domains":["exemple.fr"]}`), Remote: "127.0.0.1"}
		var prev *Entry
		if i > 0 {
			prev = &out[i-1]
		}
		e.Seal(prev)
		out = append(out, e)
	}
	return out
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func([]Entry) []Entry
		wantSeq uint64
		reason  string
	}{
		{"intact", func(e []Entry) []Entry { return e }, 0, ""},
		{"edited actor", func(e []Entry) []Entry { e[2].Actor = "quelquun"; return e }, 3, "edited"},
		{"edited after", func(e []Entry) []Entry { e[1].After = json.RawMessage(`{}`); return e }, 2, "edited"},
		{"edited and rehashed", func(e []Entry) []Entry { e[1].Action = "x"; e[1].Hash = e[1].Sum(); return e }, 3, "link"},
		{"removed middle", func(e []Entry) []Entry { return append(e[:2:2], e[3:]...) }, 3, "removed"},
		{"removed first", func(e []Entry) []Entry { return e[1:] }, 1, "removed"},
		{"reordered", func(e []Entry) []Entry { e[1], e[2] = e[2], e[1]; return e }, 2, "removed"},
		{"time shifted", func(e []Entry) []Entry { e[4].Time = e[4].Time.Add(time.Hour); return e }, 5, "edited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Verify(tt.tamper(chain(6)))
			if tt.wantSeq == 0 {
				if !res.OK() || res.Entries != 6 || res.HeadSeq != 6 {
					t.Fatalf("intact chain: %+v", res)
				}
				return
			}
			if res.OK() {
				t.Fatalf("tampering not detected: %+v", res)
			}
			if res.Problem.Seq != tt.wantSeq || !strings.Contains(res.Problem.Reason, tt.reason) {
				t.Fatalf("problem = %+v, want entry %d mentioning %q", res.Problem, tt.wantSeq, tt.reason)
			}
		})
	}
}

func TestAnchor(t *testing.T) {
	c := chain(5)
	head := Verify(c)
	if err := CheckAnchor(&c[4], head.HeadSeq, head.Head); err != nil {
		t.Fatal(err)
	}
	// Truncating the tail leaves a valid chain: only the anchor catches it.
	short := Verify(c[:3])
	if !short.OK() {
		t.Fatal("a truncated chain is still a valid chain")
	}
	if err := CheckAnchor(nil, head.HeadSeq, head.Head); err == nil {
		t.Fatal("missing anchor not detected")
	}
	if err := CheckAnchor(&c[3], head.HeadSeq, head.Head); err == nil {
		t.Fatal("wrong anchor hash not detected")
	}
}

func TestDigestJSON(t *testing.T) {
	c := chain(1)
	b, err := json.Marshal(c[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Hash != c[0].Hash || back.Sum() != c[0].Hash {
		t.Fatalf("entry does not survive JSON: %s", b)
	}
	if _, err := ParseDigest("zz"); err == nil {
		t.Fatal("short digest accepted")
	}
}
