package export

import "hash"

// asyncHash hashes on its own goroutine what is written to it, so that the
// archive's SHA-512 (the last serial step of an export: every compressed
// byte goes through it) runs beside the writes instead of after each one.
// Bytes are copied into a few 1 MiB buffers; Sum or stop must be called.
type asyncHash struct {
	h    hash.Hash
	cur  []byte
	full chan []byte
	free chan []byte
	done chan struct{}
	sum  []byte
}

const hashBuffer = 1 << 20

func newAsyncHash(h hash.Hash) *asyncHash {
	a := &asyncHash{h: h, full: make(chan []byte, 2), free: make(chan []byte, 4), done: make(chan struct{})}
	full := a.full
	go func() {
		defer close(a.done)
		for b := range full {
			a.h.Write(b)
			a.free <- b[:0]
		}
	}()
	return a
}

func (a *asyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if a.cur == nil {
			select {
			case a.cur = <-a.free:
			default:
				// Only when the others are queued or being hashed:
				// at most four buffers ever exist.
				a.cur = make([]byte, 0, hashBuffer)
			}
		}
		k := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur = a.cur[:len(a.cur)+k]
		p = p[k:]
		if len(a.cur) == cap(a.cur) {
			a.full <- a.cur
			a.cur = nil
		}
	}
	return n, nil
}

// Sum waits for the hashing to finish and returns the hash.
func (a *asyncHash) Sum() []byte {
	if a.sum != nil {
		return a.sum
	}
	if len(a.cur) > 0 {
		a.full <- a.cur
		a.cur = nil
	}
	a.stop()
	a.sum = a.h.Sum(nil)
	return a.sum
}

// stop ends the goroutine (idempotent; a failed export calls it).
func (a *asyncHash) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	if a.full != nil {
		close(a.full)
		a.full = nil
	}
	<-a.done
}
