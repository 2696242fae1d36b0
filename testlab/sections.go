package testlab

// extraSections are the edge configuration sections of the components
// other than the firewall (DNS filter, HTTP proxy), as the lab runs them:
// listening where the firewall redirects, resolving through the lab
// internet's authoritative server. Filled in as those components land.
func extraSections() map[string]any {
	return map[string]any{}
}
