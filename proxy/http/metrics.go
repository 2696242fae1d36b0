package httpproxy

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/proxy/blockcount"
)

// entry is the listener a connection came through.
type entry uint8

const (
	entryExplicit entry = iota
	entryTransparentHTTP
	entryTransparentHTTPS
	nEntries
)

var entryNames = [nEntries]string{"explicit", "transparent_http", "transparent_https"}

func (e entry) String() string { return entryNames[e] }

// outcome is the verdict label of a request.
type outcome uint8

const (
	outcomeAllow outcome = iota
	outcomeBlock
	// outcomeError: the request was allowed but failed (origin down,
	// timeout, loop, malformed input).
	outcomeError
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"allow", "block", "error"}

// upstream error reasons, a bounded label.
const (
	reasonDial = iota
	reasonTimeout
	reasonTLS
	reasonDNS
	reasonLoop
	// reasonForbidden: a destination the proxy refuses (destAllowed).
	reasonForbidden
	reasonOther
	nReasons
)

var reasonNames = [nReasons]string{"dial", "timeout", "tls", "dns", "loop", "destination", "other"}

// metrics are bound once so the hot path indexes arrays instead of
// hashing label values.
type metrics struct {
	// blocked counts refusals by category: bounded by the policy's
	// categories, never by host or client.
	blocked        *prometheus.CounterVec
	blockedBy      *blockcount.Counters // blocked, resolved per generation
	requests       [nEntries][nOutcomes]prometheus.Counter
	duration       [nEntries]prometheus.Observer
	tunnels        [nEntries]prometheus.Gauge
	connections    [nEntries]prometheus.Counter
	bytesToClient  [nEntries]prometheus.Counter
	bytesToOrigin  [nEntries]prometheus.Counter
	upstreamErrors [nReasons]prometheus.Counter
	intercepted    prometheus.Counter
	certsGenerated prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_http_requests_total",
		Help: "HTTP requests and TLS connections handled, by entry point and verdict (allow, block, error).",
	}, []string{"entry", "verdict"})
	blocked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_http_blocked_total",
		Help: "HTTP requests and TLS connections refused, by category of the deciding list.",
	}, []string{"category"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            "vigie_http_request_duration_seconds",
		Help:                            "Time from request head to the end of the response (or of the tunnel).",
		Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: 0,
	}, []string{"entry"})
	tunnels := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vigie_http_tunnels_active",
		Help: "Tunnels open now (CONNECT, spliced TLS, intercepted TLS).",
	}, []string{"entry"})
	connections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_http_connections_total",
		Help: "Client TCP connections accepted, by entry point.",
	}, []string{"entry"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_http_bytes_total",
		Help: "Bytes relayed, by entry point and direction (to_client, to_origin).",
	}, []string{"entry", "direction"})
	upstream := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_http_upstream_errors_total",
		Help: "Failures reaching origins, by reason.",
	}, []string{"reason"})
	intercepted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigie_http_intercepted_tunnels_total",
		Help: "TLS connections intercepted with the académie CA.",
	})
	certs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigie_http_certificates_generated_total",
		Help: "Interception certificates signed (cache misses).",
	})
	for _, c := range []prometheus.Collector{requests, blocked, duration, tunnels, connections, bytes, upstream, intercepted, certs} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("http: metrics: %w (one proxy per registry)", err)
			}
			return nil, fmt.Errorf("http: metrics: %w", err)
		}
	}
	m := &metrics{blocked: blocked, intercepted: intercepted, certsGenerated: certs}
	// The proxy's own refusal reasons have series whatever the policy.
	m.blockedBy = blockcount.New(blocked, slices.Sorted(maps.Keys(pseudoCategories))...)
	for e := range nEntries {
		for o := range nOutcomes {
			m.requests[e][o] = requests.WithLabelValues(entryNames[e], outcomeNames[o])
		}
		m.duration[e] = duration.WithLabelValues(entryNames[e])
		m.tunnels[e] = tunnels.WithLabelValues(entryNames[e])
		m.connections[e] = connections.WithLabelValues(entryNames[e])
		m.bytesToClient[e] = bytes.WithLabelValues(entryNames[e], "to_client")
		m.bytesToOrigin[e] = bytes.WithLabelValues(entryNames[e], "to_origin")
	}
	for r := range nReasons {
		m.upstreamErrors[r] = upstream.WithLabelValues(reasonNames[r])
	}
	return m, nil
}
