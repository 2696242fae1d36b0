package segment

import (
	"strconv"
	"testing"
)

// TestDict: the seal's dictionary gives each distinct value its id in
// order of first appearance, through growth, in an arena and on the heap,
// and an arena reset leaves it ready for the next seal.
func TestDict(t *testing.T) {
	a := newArena(64 << 20)
	if a == nil {
		t.Fatal("no arena")
	}
	defer a.free()
	for _, tc := range []struct {
		name string
		a    *arena
	}{{"arena", a}, {"heap", nil}, {"arena-again", a}} {
		t.Run(tc.name, func(t *testing.T) {
			var w columnWriter
			w.init(tc.a)
			const n = 100000
			val := func(i int) string {
				if i == 0 {
					return ""
				}
				return "host-" + strconv.Itoa(i) + ".example"
			}
			for round := range 2 {
				for i := range n {
					id := w.ref(colHost, val(i))
					if id != uint32(i+1) {
						t.Fatalf("round %d: value %d got id %d", round, i, id)
					}
				}
			}
			if w.dicts[colHost].n != n {
				t.Fatalf("%d values, want %d", w.dicts[colHost].n, n)
			}
			// What the column holds reads back as the same values.
			var b []byte
			for _, p := range w.cols[colHost].chunks {
				b = append(b, p...)
			}
			r := columnReader{}
			r.cols[colHost] = b
			for round := range 2 {
				for i := range n {
					s, err := r.str(colHost, 1024)
					if err != nil || s != val(i) {
						t.Fatalf("round %d: value %d read %q, %v", round, i, s, err)
					}
				}
			}
			tc.a.reset()
		})
	}
}
