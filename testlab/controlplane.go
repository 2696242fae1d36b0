package testlab

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// ControlPlane is the académie's control plane as an edge sees it: the
// edge endpoints of the sync protocol (long-polled bundle, status
// reports), serving whatever bundle a scenario hands it. Control-plane
// scenarios that need the real one (publishing, roles) run "vigie
// controlplane" in the internet namespace instead; this one lets a
// scenario hand the edge any bytes, a corrupt bundle included.
type ControlPlane struct {
	// Token is the edge token the lab edge presents.
	Token string
	// CAFile is the PEM file of the CA that signed its certificate.
	CAFile string

	mu      sync.Mutex
	serial  uint64
	bundle  []byte
	changed chan struct{}
	reports []Report
	polls   int
}

// Report is one status report of the edge.
type Report struct {
	Serial   uint64 `json:"serial"`
	Hash     string `json:"hash"`
	Error    string `json:"error"`
	Fallback bool   `json:"fallback"`
}

// ControlPlaneURL is where the lab edge finds the control plane.
const ControlPlaneURL = "https://" + ControlPlaneAddr

func startControlPlane(l *Lab) (*ControlPlane, error) {
	cp := &ControlPlane{Token: "vge_lab_" + l.ID, changed: make(chan struct{})}
	cp.CAFile = filepath.Join(l.Dir, "lab-ca.pem")
	if err := os.WriteFile(cp.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.Net.CA.Raw}), 0o644); err != nil {
		return nil, fmt.Errorf("testlab: %w", err)
	}
	cert, err := l.Net.issue(ControlPlaneAddr)
	if err != nil {
		return nil, fmt.Errorf("testlab: control plane certificate: %w", err)
	}
	ln, err := l.Internet.Listen("tcp", net.JoinHostPort(ControlPlaneAddr, "443"))
	if err != nil {
		return nil, fmt.Errorf("testlab: control plane: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/edge/bundle", cp.serveBundle)
	mux.HandleFunc("POST /api/v1/edge/status", cp.serveStatus)
	srv := &http.Server{Handler: cp.auth(mux), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}}}
	go srv.ServeTLS(ln, "", "")
	l.onDown(srv.Close)
	return cp, nil
}

func (cp *ControlPlane) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+cp.Token {
			http.Error(w, "unknown edge token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Offer makes data the bundle served under serial; edges waiting in a
// poll get it at once. The bytes are served as they are: a scenario may
// offer a corrupt or wrongly signed bundle.
func (cp *ControlPlane) Offer(serial uint64, data []byte) {
	cp.mu.Lock()
	cp.serial, cp.bundle = serial, data
	close(cp.changed)
	cp.changed = make(chan struct{})
	cp.mu.Unlock()
}

func (cp *ControlPlane) serveBundle(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if err != nil {
		http.Error(w, "after: not a serial", http.StatusBadRequest)
		return
	}
	if p := r.URL.Query().Get("part"); p != "" && p != "full" {
		// The lab edge is configured with full_bundles.
		http.Error(w, "the lab control plane serves whole bundles only", http.StatusBadRequest)
		return
	}
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	timer := time.NewTimer(time.Duration(min(max(wait, 0), 30)) * time.Second)
	defer timer.Stop()
	for {
		cp.mu.Lock()
		cp.polls++
		serial, data, changed := cp.serial, cp.bundle, cp.changed
		cp.mu.Unlock()
		if data != nil && serial > after {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(data)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (cp *ControlPlane) serveStatus(w http.ResponseWriter, r *http.Request) {
	var rep Report
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cp.mu.Lock()
	cp.reports = append(cp.reports, rep)
	cp.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Reports returns the edge's status reports so far.
func (cp *ControlPlane) Reports() []Report {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]Report(nil), cp.reports...)
}

// WaitReport waits until the edge reports something matching ok, among
// the reports after the first skip ones.
func (cp *ControlPlane) WaitReport(timeout time.Duration, skip int, ok func(Report) bool) (Report, error) {
	deadline := time.Now().Add(timeout)
	for {
		reps := cp.Reports()
		for _, r := range reps[min(skip, len(reps)):] {
			if ok(r) {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			return Report{}, errors.New("testlab: no matching report from the edge")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ControlPlaneSection is the edge's controlplane configuration section.
func (cp *ControlPlane) ControlPlaneSection() map[string]any {
	return map[string]any{
		"url":          ControlPlaneURL,
		"token":        cp.Token,
		"ca_file":      cp.CAFile,
		"full_bundles": true,
		"poll_timeout": "5s",
		"min_backoff":  "200ms",
		"max_backoff":  "2s",
	}
}
