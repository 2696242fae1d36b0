package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadOptions drive the open-loop load generator (role "load").
type loadOptions struct {
	// target is where connections go (the proxy, or the origin itself).
	target string
	// url is the absolute URL asked for; through a proxy the request line
	// carries it whole (absolute form), straight to the origin its path.
	url     string
	proxied bool
	rate    int
	dur     time.Duration
	warm    time.Duration
	conns   int
}

// loadResult is what the generator prints, one JSON line.
type loadResult struct {
	Rate     int     `json:"rate"`
	Sent     int64   `json:"sent"`
	OK       int64   `json:"ok"`
	Errors   int64   `json:"errors"`
	P50      int64   `json:"p50_ns"`
	P99      int64   `json:"p99_ns"`
	P999     int64   `json:"p999_ns"`
	Max      int64   `json:"max_ns"`
	Achieved float64 `json:"achieved"`
	Conns    int     `json:"conns"`
}

// runLoad sends requests on a fixed schedule (request i is due at
// start + i/rate) whatever the responses do, the way wrk2 does: a
// request's latency runs from its due time, so a stalled server is
// charged for the requests that queue behind it (no coordinated
// omission). Up to conns keep-alive connections serve the schedule; a
// request waits for a free one when all are busy, and that wait counts.
func runLoad(o loadOptions) (loadResult, error) {
	u, err := http.NewRequest(http.MethodGet, o.url, nil)
	if err != nil {
		return loadResult{}, err
	}
	target := u.URL.RequestURI()
	if o.proxied {
		target = o.url
	}
	reqBytes := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: vigie-bench-load\r\nAccept: */*\r\n\r\n", target, u.URL.Host))

	interval := time.Second / time.Duration(o.rate)
	total := int(o.dur / interval)
	warmN := int(o.warm / interval)
	due := make(chan time.Time, total+1)
	var sent, okN, errN atomic.Int64
	lat := make([][]time.Duration, o.conns)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(o.dur + 10*time.Second)
	for w := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			for d := range due {
				if c == nil {
					nc, err := net.DialTimeout("tcp", o.target, 5*time.Second)
					if err != nil {
						errN.Add(1)
						continue
					}
					c, br = nc, bufio.NewReaderSize(nc, 16<<10)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				ok := exchange(c, br, reqBytes)
				t := time.Since(d)
				if !ok {
					errN.Add(1)
					c.Close()
					c = nil
					continue
				}
				if d.Sub(start) >= o.warm {
					okN.Add(1)
					lat[w] = append(lat[w], t)
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	for i := range total {
		d := start.Add(time.Duration(i) * interval)
		if w := time.Until(d); w > 0 {
			time.Sleep(w)
		}
		if time.Now().After(end) {
			break
		}
		if i >= warmN {
			sent.Add(1)
		}
		due <- d
	}
	close(due)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		return loadResult{}, fmt.Errorf("load: requests still running 30 s after the schedule ended")
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(q float64) int64 {
		if len(all) == 0 {
			return 0
		}
		i := int(q * float64(len(all)))
		return int64(all[min(i, len(all)-1)])
	}
	res := loadResult{Rate: o.rate, Sent: sent.Load(), OK: okN.Load(), Errors: errN.Load(),
		P50: pct(0.50), P99: pct(0.99), P999: pct(0.999), Conns: o.conns}
	if len(all) > 0 {
		res.Max = int64(all[len(all)-1])
	}
	res.Achieved = float64(res.OK) / (o.dur - o.warm).Seconds()
	return res, nil
}

// exchange sends one request and reads the whole response.
func exchange(c net.Conn, br *bufio.Reader, req []byte) bool {
	if _, err := c.Write(req); err != nil {
		return false
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK && !resp.Close
}
