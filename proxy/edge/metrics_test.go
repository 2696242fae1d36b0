package edge

import (
	"strings"
	"testing"
)

func TestMetricsConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		c       MetricsConfig
		wantErr string
	}{
		{"off", MetricsConfig{}, ""},
		{"admin leg", MetricsConfig{Listen: "10.20.0.1:9153"}, ""},
		{"pprof on loopback", MetricsConfig{Listen: "127.0.0.1:9153", Pprof: true}, ""},
		{"pprof on ::1", MetricsConfig{Listen: "[::1]:9153", Pprof: true}, ""},
		{"pprof on localhost", MetricsConfig{Listen: "localhost:9153", Pprof: true}, ""},
		{"pprof on the admin leg", MetricsConfig{Listen: "10.20.0.1:9153", Pprof: true}, "loopback"},
		{"pprof on every address", MetricsConfig{Listen: ":9153", Pprof: true}, "loopback"},
		{"pprof without listen", MetricsConfig{Pprof: true}, "listen address"},
		{"no port", MetricsConfig{Listen: "10.20.0.1"}, "listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.c.validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("validate: %v, want an error about %q", err, c.wantErr)
			}
		})
	}
}
