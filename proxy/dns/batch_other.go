//go:build !linux

package dns

// batchSize bounds Config.UDPBatch; without recvmmsg, queries are read one
// at a time whatever it says.
const batchSize = 32

type batch struct{ ready [batchSize]bool }

func (l *udpListener) startBatched() bool { return false }
func (b *batch) handOff(*request)         {}
