package ui

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/rules/firewall"
	"vigie/rules/policy"
)

// firewallView is the Pare-feu page: the zone-to-zone matrix of the
// draft, its lines, and the nftables ruleset it renders to for a school.
type firewallView struct {
	Zones    []string
	Matrix   []fwRow
	Firewall policy.Firewall
	Schools  []policy.School
	School   string
	// Rendered is the nft text for School; Problems why it cannot be.
	Rendered string
	Problems []string
	Rules    int
	Editable bool
	New      policy.Flow
	Section  string
	Errors   []string
}

type fwRow struct {
	From  string
	Cells []fwCell
}

type fwCell struct {
	To    string
	Allow bool
	Text  string
}

// reviewConfig renders the matrix as an edge with the default listener
// ports would: the review is about flows, not about one gateway's ports.
// They are the ones publication checks with (checked equal to the edge's
// defaults by TestReviewPortsAreTheEdgeDefaults).
var reviewConfig = publish.ReviewFirewall

// zoneOrder puts the zones of the usual IP plan first, in the order
// people read them.
var zoneOrder = []string{"pedagogique", "administratif", "wifi", "serveurs", "invites"}

func (h *Handler) firewall(rq *request) error {
	v, err := h.firewallData(rq, rq.query("ecole"))
	if err != nil {
		return err
	}
	return rq.render(200, "firewall", "firewall.title", v)
}

func (h *Handler) firewallData(rq *request, uai string) (*firewallView, error) {
	fw, err := getFirewall(rq)
	if err != nil {
		return nil, err
	}
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	profiles, err := rq.api().Profiles(rq.ctx())
	if err != nil {
		return nil, err
	}
	v := &firewallView{Firewall: fw, Schools: schools, Editable: rq.is(auth.RSSI), Section: "flows"}
	seen := map[string]bool{}
	for _, s := range schools {
		for _, z := range s.Zones {
			seen[z.Name] = true
		}
	}
	for _, z := range zoneOrder {
		if seen[z] {
			v.Zones = append(v.Zones, z)
			delete(seen, z)
		}
	}
	var rest []string
	for z := range seen {
		rest = append(rest, z)
	}
	slices.Sort(rest)
	v.Zones = append(v.Zones, rest...)
	v.Matrix = flowMatrix(v.Zones, fw)

	if uai == "" && len(schools) > 0 {
		uai = schools[0].UAI
	}
	v.School = uai
	if uai != "" {
		p := &policy.Policy{Schools: schools, Profiles: profiles, Firewall: fw}
		src, err := firewall.FromPolicy(p, uai)
		if err != nil {
			return nil, notFound()
		}
		rs, err := firewall.Build(src, reviewConfig)
		if err != nil {
			v.Problems = policy.Problems(err)
		} else {
			var b strings.Builder
			if err := firewall.Render(&b, rs); err != nil {
				return nil, err
			}
			v.Rendered, v.Rules = b.String(), rs.Rules()
		}
	}
	return v, nil
}

// flowMatrix says, for each pair of zones and for the internet, what the
// matrix allows; anything not listed is refused.
func flowMatrix(zones []string, fw policy.Firewall) []fwRow {
	var rows []fwRow
	describe := func(f policy.Flow) string {
		s := T("firewall.matrix.any")
		if len(f.Services) > 0 {
			s = strings.Join(f.Services, ", ")
		}
		if f.Proto != "" && f.Proto != "any" {
			s = strings.ToUpper(f.Proto)
		}
		if len(f.Ports) > 0 {
			s += " " + strings.Join(f.Ports, ", ")
		}
		if f.Action == "deny" {
			s = T("firewall.denied", s)
		}
		return s
	}
	for _, from := range zones {
		row := fwRow{From: from}
		for _, to := range append(slices.Clone(zones), "internet") {
			cell := fwCell{To: to}
			var parts []string
			flows := fw.Flows
			if to == "internet" {
				flows = fw.Internet
			}
			for _, f := range flows {
				if f.From != from || (to != "internet" && f.To != to) {
					continue
				}
				parts = append(parts, describe(f))
				if f.Action != "deny" {
					cell.Allow = true
				}
			}
			if from == to && to != "internet" {
				// Inside a zone the gateway does not route: traffic stays
				// on the zone's own network.
				cell.Text = T("firewall.samezone")
			} else if len(parts) == 0 {
				cell.Text = T("firewall.refused")
			} else {
				cell.Text = strings.Join(parts, "\u202f; ")
			}
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

// firewallAdd adds a line to a section of the matrix.
func (h *Handler) firewallAdd(rq *request) error {
	section := rq.form("section")
	f := policy.Flow{From: rq.form("from"), To: rq.form("to"), Proto: rq.form("proto"), Action: rq.form("action"),
		Comment: rq.form("comment")}
	if ports := rq.form("ports"); ports != "" {
		// The field takes ports and, for the internet and management
		// sections, the services of the matrix (web, dns, ntp, metrics).
		for _, p := range strings.FieldsFunc(ports, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
			if slices.Contains(matrixServices, strings.ToLower(p)) {
				f.Services = append(f.Services, strings.ToLower(p))
			} else {
				f.Ports = append(f.Ports, p)
			}
		}
	}
	if f.Proto == "any" {
		f.Proto = ""
	}
	fw, err := getFirewall(rq)
	if err != nil {
		return err
	}
	switch section {
	case "flows":
		fw.Flows = append(fw.Flows, f)
	case "internet":
		f.To = ""
		fw.Internet = append(fw.Internet, f)
	case "management":
		f.To = ""
		fw.Management = append(fw.Management, f)
	default:
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("firewall.badsection")}
	}
	if errs := h.checkFlow(rq, section, f); len(errs) > 0 {
		v, err := h.firewallData(rq, "")
		if err != nil {
			return err
		}
		v.New, v.Section, v.Errors = f, section, errs
		return rq.render(422, "firewall", "firewall.title", v)
	}
	if err := putFirewall(rq, fw); err != nil {
		return err
	}
	return rq.redirect("/pare-feu", "flowadded")
}

// checkFlow builds the new line alone for every school before it is
// saved, so that a line naming a zone no school has, or a bad port, is
// refused here rather than at publication. A zone only some schools have
// is fine: the line applies where the zone exists.
func (h *Handler) checkFlow(rq *request, section string, f policy.Flow) []string {
	schools, err := allSchools(rq)
	if err != nil {
		return []string{err.Error()}
	}
	var one policy.Firewall
	switch section {
	case "flows":
		one.Flows = []policy.Flow{f}
	case "internet":
		one.Internet = []policy.Flow{f}
	default:
		one.Management = []policy.Flow{f}
	}
	p := &policy.Policy{Schools: schools, Firewall: one}
	var first []string
	for _, s := range schools {
		src, err := firewall.FromPolicy(p, s.UAI)
		if err == nil {
			_, err = firewall.Build(src, reviewConfig)
		}
		if err == nil {
			return nil
		}
		if first == nil {
			first = policy.Problems(err)
		}
	}
	return first
}

// firewallRemove removes a line, named by section and index, if it is
// still the line the page showed.
func (h *Handler) firewallRemove(rq *request) error {
	section, want := rq.form("section"), rq.form("line")
	i, err := strconv.Atoi(rq.form("index"))
	if err != nil {
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("firewall.badsection")}
	}
	fw, err := getFirewall(rq)
	if err != nil {
		return err
	}
	list := map[string]*[]policy.Flow{"flows": &fw.Flows, "internet": &fw.Internet, "management": &fw.Management}[section]
	if list == nil || i < 0 || i >= len(*list) || flowKey((*list)[i]) != want {
		v, err := h.firewallData(rq, "")
		if err != nil {
			return err
		}
		v.Errors = []string{T("firewall.stale")}
		return rq.render(409, "firewall", "firewall.title", v)
	}
	*list = slices.Delete(*list, i, i+1)
	if err := putFirewall(rq, fw); err != nil {
		return err
	}
	return rq.redirect("/pare-feu", "flowremoved")
}

// flowKey identifies a line's content, so that a removal applies to the
// line that was shown even if another was removed meanwhile.
func flowKey(f policy.Flow) string {
	return strings.Join([]string{f.From, f.To, strings.Join(f.Services, ","), f.Proto, strings.Join(f.Ports, ","), f.Action, f.Comment}, "|")
}

// matrixServices are the service names the ports field accepts.
var matrixServices = []string{firewall.ServiceWeb, firewall.ServiceDNS, firewall.ServiceNTP, firewall.ServiceMetrics}

// getFirewall reads the draft's flow matrix.
func getFirewall(rq *request) (policy.Firewall, error) {
	var fw policy.Firewall
	raw, err := rq.api().Firewall(rq.ctx())
	if err != nil {
		return fw, err
	}
	if err := json.Unmarshal(raw, &fw); err != nil {
		return fw, fmt.Errorf("ui: firewall: %w", err)
	}
	return fw, nil
}

// putFirewall replaces the draft's flow matrix.
func putFirewall(rq *request, fw policy.Firewall) error {
	raw, err := json.Marshal(fw)
	if err != nil {
		return fmt.Errorf("ui: firewall: %w", err)
	}
	_, err = rq.api().PutFirewall(rq.ctx(), raw)
	return err
}
