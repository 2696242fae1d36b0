package controlplane

import "testing"

func TestPprofOnlyOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9154": true, "[::1]:9154": true, "localhost:9154": true,
		":9154": false, "0.0.0.0:9154": false, "10.0.0.5:9154": false, "garbage": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
