package httpproxy

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// LoadCA loads the académie's interception CA from PEM files. Only ECDSA
// CAs are accepted: goproxy derives the leaf key type from the CA's, and an
// RSA CA would cost an RSA key generation per intercepted host.
func LoadCA(certFile, keyFile string) (*tls.Certificate, error) {
	ca, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("http: interception CA %s: %w", certFile, err)
	}
	if err := checkCA(&ca); err != nil {
		return nil, fmt.Errorf("http: interception CA %s: %w", certFile, err)
	}
	return &ca, nil
}

func checkCA(ca *tls.Certificate) error {
	if len(ca.Certificate) == 0 {
		return errors.New("no certificate")
	}
	leaf := ca.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(ca.Certificate[0]); err != nil {
			return err
		}
		ca.Leaf = leaf
	}
	if _, ok := ca.PrivateKey.(*ecdsa.PrivateKey); !ok {
		return fmt.Errorf("key is %T, want an ECDSA key", ca.PrivateKey)
	}
	if !leaf.IsCA {
		return errors.New("certificate is not a CA (basicConstraints CA:TRUE missing)")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("certificate may not sign certificates (keyUsage lacks keyCertSign)")
	}
	if time.Now().After(leaf.NotAfter) {
		return fmt.Errorf("certificate expired on %s", leaf.NotAfter.Format(time.DateOnly))
	}
	return nil
}

// certStore is goproxy's certificate cache: bounded (least recently used
// out), one signature per host at a time however many clients ask
// together, and no expired certificate served.
type certStore struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used
	items map[string]*list.Element
	group singleflight.Group
	now   func() time.Time
	// generated counts signatures (metric).
	generated func()
}

type certItem struct {
	host string
	cert *tls.Certificate
}

func newCertStore(max int, now func() time.Time, generated func()) *certStore {
	return &certStore{max: max, order: list.New(), items: map[string]*list.Element{}, now: now, generated: generated}
}

// Fetch implements goproxy.CertStorage.
func (s *certStore) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	if c := s.get(host); c != nil {
		return c, nil
	}
	v, err, _ := s.group.Do(host, func() (any, error) {
		if c := s.get(host); c != nil {
			return c, nil
		}
		c, err := gen()
		if err != nil {
			return nil, err
		}
		s.generated()
		s.put(host, c)
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("http: sign certificate for %q: %w", host, err)
	}
	return v.(*tls.Certificate), nil
}

func (s *certStore) get(host string) *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[host]
	if !ok {
		return nil
	}
	it := el.Value.(*certItem)
	// Renew a day before expiry rather than serve an expired leaf.
	if it.cert.Leaf != nil && s.now().Add(24*time.Hour).After(it.cert.Leaf.NotAfter) {
		s.order.Remove(el)
		delete(s.items, host)
		return nil
	}
	s.order.MoveToFront(el)
	return it.cert
}

func (s *certStore) put(host string, c *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[host]; ok {
		el.Value.(*certItem).cert = c
		s.order.MoveToFront(el)
		return
	}
	s.items[host] = s.order.PushFront(&certItem{host: host, cert: c})
	for s.order.Len() > s.max {
		last := s.order.Back()
		s.order.Remove(last)
		delete(s.items, last.Value.(*certItem).host)
	}
}

func (s *certStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
