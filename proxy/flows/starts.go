package flows

import (
	"net/netip"
	"sync"
	"time"
)

// starts remembers when each flow was seen new, for kernels that do not
// stamp flows; bounded so that a flood of new flows cannot grow it
// without limit (a flow not remembered starts when its destroy says).
type starts struct {
	mu  sync.Mutex
	m   map[uint32]time.Time
	max int
}

func (s *starts) put(id uint32, t time.Time) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[uint32]time.Time{}
	}
	if len(s.m) < s.max {
		s.m[id] = t
	}
	s.mu.Unlock()
}

func (s *starts) take(id uint32) time.Time {
	s.mu.Lock()
	t := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	return t
}

func addrPort(a netip.Addr, port uint16) netip.AddrPort {
	if !a.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), port)
}
