package dns

import (
	"errors"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigie/proxy/blockcount"
)

// verdict is the outcome of a query as metrics and the journal see it.
type verdict uint8

const (
	verdictAllow verdict = iota
	verdictBlock
	// verdictSafeSearch: answered with the engine's enforced-safe endpoint.
	verdictSafeSearch
	// verdictError: FORMERR, REFUSED, NOTIMP or SERVFAIL from the filter itself.
	verdictError
	nVerdicts
)

var verdictNames = [nVerdicts]string{"allow", "block", "safesearch", "error"}

func (v verdict) String() string { return verdictNames[v] }

// metricTypes are the query types with their own label value; the rest
// count as "other", so a client cannot grow the label set.
var metricTypes = []uint16{typeA, typeAAAA, typeHTTPS, typeSVCB, typeCNAME, typeMX, typeTXT, typePTR, typeSRV, typeNS, typeSOA, typeANY}

func qtypeIndex(t uint16) int {
	for i, x := range metricTypes {
		if x == t {
			return i
		}
	}
	return len(metricTypes)
}

// metrics are the vigie_dns_* series. Counters of the per-query path are
// resolved once here, so that counting a query is one atomic add.
type metrics struct {
	// blocked counts refusals by category: bounded by the policy's
	// categories (about 80), never by name or client.
	blocked     *prometheus.CounterVec
	blockedBy   *blockcount.Counters // blocked, resolved per generation
	queries     [nVerdicts][]prometheus.Counter
	duration    prometheus.Histogram
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	coalesced   prometheus.Counter
	stale       prometheus.Counter
	upErrors    *prometheus.CounterVec
	upDuration  *prometheus.HistogramVec
	upHealthy   *prometheus.GaugeVec
	limited     prometheus.Counter
	limitedSrcs prometheus.Counter
	malformed   *prometheus.CounterVec
	overload    prometheus.Counter
	tcpRefused  prometheus.Counter
	upRenewed   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, cacheLen func() float64) *metrics {
	f := promauto.With(reg)
	m := &metrics{}
	qv := f.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_dns_queries_total",
		Help: "DNS queries answered, by verdict and query type.",
	}, []string{"verdict", "qtype"})
	for v := range nVerdicts {
		m.queries[v] = make([]prometheus.Counter, len(metricTypes)+1)
		for i := range m.queries[v] {
			name := "other"
			if i < len(metricTypes) {
				name = typeString(metricTypes[i])
			}
			m.queries[v][i] = qv.WithLabelValues(verdictNames[v], name)
		}
	}
	m.blocked = f.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_dns_blocked_total",
		Help: "DNS queries refused, by category of the deciding list.",
	}, []string{"category"})
	m.blockedBy = blockcount.New(m.blocked)
	m.duration = f.NewHistogram(prometheus.HistogramOpts{
		Name:                           "vigie_dns_query_duration_seconds",
		Help:                           "Time from reading a query to writing its answer.",
		Buckets:                        []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		NativeHistogramBucketFactor:    1.1,
		NativeHistogramMaxBucketNumber: 100,
	})
	m.cacheHits = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_cache_hits_total", Help: "Queries answered from the cache."})
	m.cacheMisses = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_cache_misses_total", Help: "Queries that needed an upstream answer."})
	m.coalesced = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_coalesced_total", Help: "Queries that waited for an identical query already sent upstream."})
	m.stale = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_stale_answers_total", Help: "Expired answers served because no upstream answered (RFC 8767)."})
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigie_dns_cache_entries", Help: "Answers held in the cache."}, cacheLen)
	m.upErrors = f.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_dns_upstream_errors_total",
		Help: "Failed upstream exchanges, by upstream and kind (timeout, refused, network, rcode, invalid).",
	}, []string{"upstream", "kind"})
	m.upDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vigie_dns_upstream_duration_seconds",
		Help:    "Upstream exchange latency, by upstream.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	}, []string{"upstream"})
	m.upHealthy = f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vigie_dns_upstream_healthy",
		Help: "1 when the upstream is in use, 0 while it is marked down.",
	}, []string{"upstream"})
	m.limited = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_rate_limited_queries_total", Help: "Queries dropped because their source exceeded its rate."})
	m.limitedSrcs = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_rate_limited_clients_total", Help: "Times a source address started being rate-limited."})
	m.malformed = f.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_dns_malformed_total",
		Help: "Queries refused as malformed, by action (formerr, drop).",
	}, []string{"action"})
	// Both actions exist from the first scrape, at zero, so that rate()
	// sees the first malformed query.
	for _, action := range []string{"formerr", "drop"} {
		m.malformed.WithLabelValues(action)
	}
	m.overload = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_overload_total", Help: "Queries answered SERVFAIL because too many were waiting for upstreams."})
	m.tcpRefused = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_tcp_refused_total", Help: "TCP connections closed at once because of the connection limits."})
	m.upRenewed = f.NewCounter(prometheus.CounterOpts{Name: "vigie_dns_upstream_sockets_renewed_total", Help: "Upstream UDP sockets replaced by a new one (a new source port) at the end of their life."})
	return m
}

// upstreamErrorKinds are the kind label values of
// vigie_dns_upstream_errors_total: upstreamError and the rcode check in
// exchange use no others.
var upstreamErrorKinds = [...]string{"timeout", "refused", "network", "rcode", "invalid"}

// addUpstream creates the series of a configured upstream before its first
// exchange: healthy at 1, its error counters (every kind) and latency
// histogram at zero, so that rate() and the upstream alerts work from the
// first scrape instead of from the first failure.
func (m *metrics) addUpstream(upstream string) {
	for _, kind := range upstreamErrorKinds {
		m.upErrors.WithLabelValues(upstream, kind)
	}
	m.upDuration.WithLabelValues(upstream)
	m.upHealthy.WithLabelValues(upstream).Set(1)
}

func (m *metrics) upstreamError(upstream string, err error) {
	kind := "network"
	switch {
	case errors.Is(err, errTimeout):
		kind = "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case !isNetworkFailure(err):
		kind = "invalid"
	}
	m.upErrors.WithLabelValues(upstream, kind).Inc()
}
