package flows

import (
	"testing"
	"time"

	"vigie/journal"
)

// FuzzDroppedPacket feeds arbitrary packets as NFLOG would deliver them:
// never a panic, and a record only for what parses as IP.
func FuzzDroppedPacket(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 10, 0, 10, 198, 51, 100, 2, 0x9c, 0x40, 0xca, 0x6c, 0, 8, 0, 0})
	f.Add(append([]byte{0x60, 0, 0, 0, 0, 8, 44, 64}, make([]byte, 48)...))
	f.Fuzz(func(t *testing.T, p []byte) {
		mem := &journal.Memory{}
		r, _ := New(Config{UAI: "0671234X"}, Deps{Journal: mem})
		err := r.Dropped(p, "internet.pedagogique", time.Unix(1_800_000_000, 0))
		if err != nil && len(mem.Records()) != 0 {
			t.Fatal("a record for a packet that did not parse")
		}
	})
}
