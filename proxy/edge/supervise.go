package edge

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// A listener that stops serving while the edge runs leaves a school
// without part of its filter (a dead HTTPS entry refuses every HTTPS
// connection) while everything else looks healthy. The edge does not try
// to revive it in place: the listener died for a reason the process cannot
// know is gone (a closed socket, exhausted descriptors). It reports the
// death on Failed, and "vigie edge" exits non-zero, so systemd
// (Restart=always in vigie-edge.service) starts a fresh process from the
// last-known-good policy within seconds; a restart loop shows as
// VigieEdgeDown. Until the exit, vigie_edge_listener_up is 0 for that
// listener, for an embedding (the demo) that keeps running.

// listenerUp is the vigie_edge_listener_up gauge, created once per edge.
func (e *Edge) listenerUp() *prometheus.GaugeVec {
	e.superviseOnce.Do(func() {
		e.listenerGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigie_edge_listener_up",
			Help: "1 while the edge's listener (explicit, transparent_http, transparent_https, metrics) serves; 0 once it has stopped on an error.",
		}, []string{"listener"})
		if err := e.reg.Register(e.listenerGauge); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				e.listenerGauge = are.ExistingCollector.(*prometheus.GaugeVec)
			}
		}
		e.failed = make(chan error, 1)
	})
	return e.listenerGauge
}

// supervise runs serve on its own goroutine and reports its death. An
// orderly stop (Shutdown closing the listener) is not a death.
func (e *Edge) supervise(name string, serve func() error) {
	up := e.listenerUp().WithLabelValues(name)
	up.Set(1)
	e.supervised.Add(1)
	go func() {
		defer e.supervised.Done()
		err := serve()
		if err == nil || errors.Is(err, http.ErrServerClosed) || (errors.Is(err, net.ErrClosed) && e.stopping.Load()) {
			return
		}
		up.Set(0)
		e.log.Error("listener stopped: the edge is no longer whole and exits for systemd to restart it", "listener", name, "err", err)
		select {
		case e.failed <- fmt.Errorf("edge: listener %s stopped: %w", name, err):
		default: // one report is enough to stop the process
		}
	}()
}

// Failed delivers the first listener death. The caller (vigie edge) stops
// the edge and exits non-zero.
func (e *Edge) Failed() <-chan error {
	e.listenerUp()
	return e.failed
}
