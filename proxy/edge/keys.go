package edge

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/keyfile"
)

// maxPinnedKeys bounds public_keys: a rotation needs two keys, a third
// covers an emergency rotation in the middle of a scheduled one. The bound
// also bounds the key label of the edge's key metrics.
const maxPinnedKeys = 4

// checkKeyFields checks the choice between public_key and public_keys
// without reading the files: exactly one of them, and a list that is not
// empty, not too long and names no file twice.
func (c Config) checkKeyFields() error {
	switch {
	case c.PublicKey != "" && c.PublicKeys != nil:
		return errors.New("public_key and public_keys are both set: keep only public_keys (list the current key in it)")
	case c.PublicKey != "":
		return nil
	case c.PublicKeys == nil:
		return errors.New("public_key or public_keys is required")
	case len(c.PublicKeys) == 0:
		return errors.New("public_keys is empty: it must list at least the académie's current key")
	case len(c.PublicKeys) > maxPinnedKeys:
		return fmt.Errorf("public_keys lists %d keys, at most %d", len(c.PublicKeys), maxPinnedKeys)
	}
	seen := map[string]int{}
	for i, p := range c.PublicKeys {
		if p == "" {
			return fmt.Errorf("public_keys[%d] is empty", i)
		}
		if j, ok := seen[p]; ok {
			return fmt.Errorf("public_keys[%d] repeats public_keys[%d] (%s)", i, j, p)
		}
		seen[p] = i
	}
	return nil
}

// loadKeys reads the pinned académie keys, in configuration order. Errors
// name the field and the file.
func (c Config) loadKeys() ([]ed25519.PublicKey, error) {
	if err := c.checkKeyFields(); err != nil {
		return nil, err
	}
	if c.PublicKey != "" {
		pub, err := keyfile.LoadPublic(c.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("public_key: %w", err)
		}
		return []ed25519.PublicKey{pub}, nil
	}
	keys := make([]ed25519.PublicKey, 0, len(c.PublicKeys))
	for i, p := range c.PublicKeys {
		pub, err := keyfile.LoadPublic(p)
		if err != nil {
			return nil, fmt.Errorf("public_keys[%d]: %w", i, err)
		}
		// Two files holding the same key would show as one fingerprint:
		// surely a copy made in the wrong place during a rotation.
		for j, k := range keys {
			if k.Equal(pub) {
				return nil, fmt.Errorf("public_keys[%d] %s holds the same key as public_keys[%d] %s", i, p, j, c.PublicKeys[j])
			}
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// keyCollector exports which académie key verified the bundle in force,
// and which keys are pinned, by fingerprint: during a rotation the RSSI
// removes the old key from the edges only once every edge runs a bundle
// signed by the new one. Label values are the pinned keys' fingerprints,
// so at most maxPinnedKeys series each.
type keyCollector struct {
	e               *Edge
	inForce, pinned *prometheus.Desc
}

func newKeyCollector(e *Edge) *keyCollector {
	return &keyCollector{
		e: e,
		inForce: prometheus.NewDesc("vigie_edge_policy_key_info",
			"1 labelled with the fingerprint (first 8 hex digits of the SHA-256 of the raw Ed25519 key) of the académie key that verified the policy bundle in force; absent while the built-in strict policy runs.",
			[]string{"key"}, nil),
		pinned: prometheus.NewDesc("vigie_edge_pinned_key_info",
			"1 for each académie key this edge pins (public_key or public_keys), labelled with its fingerprint.",
			[]string{"key"}, nil),
	}
}

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inForce
	ch <- c.pinned
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, fp := range c.e.fps {
		ch <- prometheus.MustNewConstMetric(c.pinned, prometheus.GaugeValue, 1, fp)
	}
	if fp := c.e.PolicyKey(); fp != "" {
		ch <- prometheus.MustNewConstMetric(c.inForce, prometheus.GaugeValue, 1, fp)
	}
}

// fingerprints names keys for logs and metrics.
func fingerprints(keys []ed25519.PublicKey) []string {
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = keyfile.Fingerprint(k)
	}
	return fps
}

// PolicyKey is the fingerprint of the académie key that verified the
// bundle in force ("" while the built-in strict policy runs).
func (e *Edge) PolicyKey() string {
	if i := int(e.keyInForce.Load()); i >= 0 && i < len(e.fps) {
		return e.fps[i]
	}
	return ""
}
