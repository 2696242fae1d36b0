package testlab

import "fmt"

// extraSections are the edge configuration sections of the components
// other than the firewall and sync: the DNS filter and the HTTP proxy,
// listening where the firewall redirects and resolving through the lab
// internet's authoritative server.
func extraSections() map[string]any {
	return map[string]any{
		"dns": map[string]any{
			"listen":    ":53",
			"upstreams": []string{AuthDNSAddr + ":53"},
			// Blocked names of block-page profiles resolve to the gateway,
			// whose port 80 the firewall hands to the proxy's block page.
			"blockpage_ipv4": EdgePedAddr,
		},
		"http": map[string]any{
			"transparent_http":  fmt.Sprintf(":%d", HTTPPort),
			"transparent_https": fmt.Sprintf(":%d", HTTPSPort),
		},
	}
}
