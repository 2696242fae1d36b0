package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"vigie/controlplane/api"
	"vigie/controlplane/audit"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/controlplane/ut1import"
	"vigie/journal/archive"
	"vigie/journal/export"
	"vigie/rules/policy"
)

// The routes, one method each, in the order of the API document.

// Health is GET /health: the published serial, no account needed.
func (c *Client) Health(ctx context.Context) (serial uint64, err error) {
	var h struct {
		Serial uint64 `json:"serial"`
	}
	err = c.Call(ctx, "GET", V1+"/health", nil, &h)
	return h.Serial, err
}

// Me is the identity of the token.
func (c *Client) Me(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Call(ctx, "GET", V1+"/me", nil, &out)
}

// Tokens lists the caller's API tokens.
func (c *Client) Tokens(ctx context.Context) ([]store.APIToken, error) {
	return All[store.APIToken](ctx, c, V1+"/tokens")
}

// CreateToken creates an API token of the caller (shown once).
func (c *Client) CreateToken(ctx context.Context, req api.TokenRequest) (api.TokenCreated, error) {
	var out api.TokenCreated
	return out, c.Call(ctx, "POST", V1+"/tokens", req, &out)
}

// RevokeToken revokes one of the caller's tokens.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", V1+"/tokens/"+seg(id), nil, nil)
}

// Users lists the accounts.
func (c *Client) Users(ctx context.Context) ([]store.User, error) {
	return All[store.User](ctx, c, V1+"/users")
}

// CreateUser creates an account (its password is shown once).
func (c *Client) CreateUser(ctx context.Context, req api.UserRequest) (api.UserCreated, error) {
	var out api.UserCreated
	return out, c.Call(ctx, "POST", V1+"/users", req, &out)
}

// PatchUser changes an account. Password is set when the patch asked
// for a generated one.
func (c *Client) PatchUser(ctx context.Context, login string, req api.UserPatch) (api.UserCreated, error) {
	var raw json.RawMessage
	if err := c.Call(ctx, "PATCH", V1+"/users/"+seg(login), req, &raw); err != nil {
		return api.UserCreated{}, err
	}
	// The answer is the account, or the account and its new password.
	var out api.UserCreated
	if err := json.Unmarshal(raw, &out); err == nil && out.User.Login != "" {
		return out, nil
	}
	return out, json.Unmarshal(raw, &out.User)
}

// Draft reads the draft document.
func (c *Client) Draft(ctx context.Context) (api.DraftView, error) {
	var out api.DraftView
	return out, c.Call(ctx, "GET", V1+"/draft", nil, &out)
}

// Diff says what the draft changes against the version in force.
func (c *Client) Diff(ctx context.Context) (publish.Diff, error) {
	var out publish.Diff
	return out, c.Call(ctx, "GET", V1+"/draft/diff", nil, &out)
}

// Validate validates and compiles the draft without publishing.
func (c *Client) Validate(ctx context.Context) (api.ValidateResult, error) {
	var out api.ValidateResult
	return out, c.Call(ctx, "POST", V1+"/draft/validate", nil, &out)
}

// Categories lists the categories of the version in force into out, a
// page ({"items": [...]}) holding all of them: it follows next, so that
// no category past the first page is silently left out.
func (c *Client) Categories(ctx context.Context, out any) error {
	items, err := All[json.RawMessage](ctx, c, V1+"/categories")
	if err != nil {
		return err
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	b, err := json.Marshal(Page[json.RawMessage]{Items: items})
	if err != nil {
		return fmt.Errorf("apiclient: categories: %w", err)
	}
	return json.Unmarshal(b, out)
}

// Profiles lists the draft's profiles.
func (c *Client) Profiles(ctx context.Context) ([]policy.Profile, error) {
	return All[policy.Profile](ctx, c, V1+"/profiles")
}

// PutProfile creates or replaces a profile.
func (c *Client) PutProfile(ctx context.Context, p policy.Profile) (policy.Profile, error) {
	var out policy.Profile
	return out, c.Call(ctx, "PUT", V1+"/profiles/"+seg(p.ID), p, &out)
}

// DeleteProfile removes a profile.
func (c *Client) DeleteProfile(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", V1+"/profiles/"+seg(id), nil, nil)
}

// Firewall reads the draft's flow matrix.
func (c *Client) Firewall(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Call(ctx, "GET", V1+"/firewall", nil, &out)
}

// PutFirewall replaces the flow matrix (the document as GET returns it).
func (c *Client) PutFirewall(ctx context.Context, fw json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Call(ctx, "PUT", V1+"/firewall", fw, &out)
}

// Schools lists the schools (a chef sees only theirs).
func (c *Client) Schools(ctx context.Context) ([]policy.School, error) {
	return All[policy.School](ctx, c, V1+"/schools")
}

// School reads one school.
func (c *Client) School(ctx context.Context, uai string) (policy.School, error) {
	var out policy.School
	return out, c.Call(ctx, "GET", V1+"/schools/"+seg(uai), nil, &out)
}

// PutSchool creates or changes a school and its zones.
func (c *Client) PutSchool(ctx context.Context, s policy.School) (policy.School, error) {
	var out policy.School
	return out, c.Call(ctx, "PUT", V1+"/schools/"+seg(s.UAI), s, &out)
}

// DeleteSchool removes a school.
func (c *Client) DeleteSchool(ctx context.Context, uai string) error {
	return c.Call(ctx, "DELETE", V1+"/schools/"+seg(uai), nil, nil)
}

// SchoolStatus is the serial each of a school's edges applied.
func (c *Client) SchoolStatus(ctx context.Context, uai string) (api.SchoolStatus, error) {
	var out api.SchoolStatus
	return out, c.Call(ctx, "GET", V1+"/schools/"+seg(uai)+"/status", nil, &out)
}

// Explain asks what a zone of a school gets for an address: the answer
// of the UI's Tester.
func (c *Client) Explain(ctx context.Context, req api.ExplainRequest) (api.ExplainResult, error) {
	var out api.ExplainResult
	return out, c.Call(ctx, "POST", V1+"/explain", req, &out)
}

// Lists lists the custom lists.
func (c *Client) Lists(ctx context.Context) ([]store.List, error) {
	return All[store.List](ctx, c, V1+"/lists")
}

// CreateList creates a custom list.
func (c *Client) CreateList(ctx context.Context, req api.ListCreate) (store.List, error) {
	var out store.List
	return out, c.Call(ctx, "POST", V1+"/lists", req, &out)
}

// DeleteList removes a list and its entries.
func (c *Client) DeleteList(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", V1+"/lists/"+seg(id), nil, nil)
}

// EachEntry gives a list's entries page by page.
func (c *Client) EachEntry(ctx context.Context, id string, fn func([]store.Entry) error) error {
	return Each(ctx, c, V1+"/lists/"+seg(id)+"/entries", 0, fn)
}

// AddEntries adds entries to a list.
func (c *Client) AddEntries(ctx context.Context, id string, ch api.EntriesChange) (api.EntriesResult, error) {
	var out api.EntriesResult
	return out, c.Call(ctx, "POST", V1+"/lists/"+seg(id)+"/entries", ch, &out)
}

// RemoveEntries removes entries from a list.
func (c *Client) RemoveEntries(ctx context.Context, id string, ch api.EntriesChange) (api.EntriesResult, error) {
	var out api.EntriesResult
	return out, c.Call(ctx, "POST", V1+"/lists/"+seg(id)+"/entries/remove", ch, &out)
}

// Publish validates, signs and sends the draft.
func (c *Client) Publish(ctx context.Context, req api.PublishRequest) (store.Version, error) {
	var out store.Version
	return out, c.Call(ctx, "POST", V1+"/publish", req, &out)
}

// Versions gives the published versions, newest first, up to max.
func (c *Client) Versions(ctx context.Context, max int) ([]store.Version, error) {
	var out []store.Version
	err := Each(ctx, c, V1+"/versions", max, func(items []store.Version) error { out = append(out, items...); return nil })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, err
}

// Source is the policy and lists of a published version.
func (c *Client) Source(ctx context.Context, serial uint64) (publish.Source, error) {
	var out publish.Source
	return out, c.Call(ctx, "GET", fmt.Sprintf("%s/versions/%d/source", V1, serial), nil, &out)
}

// Bundle is the signed bundle of a published version, as edges get it.
func (c *Client) Bundle(ctx context.Context, serial uint64) ([]byte, error) {
	return c.Bytes(ctx, fmt.Sprintf("%s/versions/%d/bundle", V1, serial))
}

// PublicKey is the académie's public key (PEM).
func (c *Client) PublicKey(ctx context.Context) ([]byte, error) {
	return c.Bytes(ctx, V1+"/public-key")
}

// Rollback republishes an earlier version under a new serial.
func (c *Client) Rollback(ctx context.Context, serial string, req api.PublishRequest) (store.Version, error) {
	var out store.Version
	return out, c.Call(ctx, "POST", V1+"/versions/"+seg(serial)+"/rollback", req, &out)
}

// ImportUT1 makes the control plane download and import the UT1 lists.
func (c *Client) ImportUT1(ctx context.Context, req api.ImportRequest) (ut1import.Result, error) {
	var out ut1import.Result
	return out, c.Call(ctx, "POST", V1+"/imports/ut1", req, &out)
}

// Edges lists the edges (of one school when uai is set).
func (c *Client) Edges(ctx context.Context, uai string) ([]api.EdgeHealth, error) {
	p := V1 + "/edges"
	if uai != "" {
		p += "?uai=" + url.QueryEscape(uai)
	}
	return All[api.EdgeHealth](ctx, c, p)
}

// CreateEdge registers an edge; its token is shown once.
func (c *Client) CreateEdge(ctx context.Context, req api.EdgeCreate) (api.EdgeCreated, error) {
	var out api.EdgeCreated
	return out, c.Call(ctx, "POST", V1+"/edges", req, &out)
}

// DeleteEdge removes an edge (its token stops working).
func (c *Client) DeleteEdge(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", V1+"/edges/"+seg(id), nil, nil)
}

// RotateEdgeToken gives an edge a new token.
func (c *Client) RotateEdgeToken(ctx context.Context, id string) (api.EdgeCreated, error) {
	var out api.EdgeCreated
	return out, c.Call(ctx, "POST", V1+"/edges/"+seg(id)+"/token", nil, &out)
}

// Audit gives the audit log's entries page by page.
func (c *Client) Audit(ctx context.Context, fn func([]audit.Entry) error) error {
	return Each(ctx, c, V1+"/audit", 0, fn)
}

// VerifyAudit verifies the audit log's hash chain.
func (c *Client) VerifyAudit(ctx context.Context) (api.AuditVerify, error) {
	var out api.AuditVerify
	return out, c.Call(ctx, "GET", V1+"/audit/verify", nil, &out)
}

// HoldRequest places a hold (legal conservation) on a school's records.
type HoldRequest struct {
	UAI       string `json:"uai"`
	From      string `json:"from"`
	To        string `json:"to"`
	Client    string `json:"client,omitempty"`
	Reference string `json:"reference"`
}

// Holds lists the holds (released ones too when all is set).
func (c *Client) Holds(ctx context.Context, all bool) ([]archive.Hold, error) {
	var out struct {
		Holds []archive.Hold `json:"holds"`
	}
	p := V1 + "/holds"
	if all {
		p += "?all=true"
	}
	return out.Holds, c.Call(ctx, "GET", p, nil, &out)
}

// PlaceHold places a hold.
func (c *Client) PlaceHold(ctx context.Context, req HoldRequest) (archive.Hold, error) {
	var out archive.Hold
	return out, c.Call(ctx, "POST", V1+"/holds", req, &out)
}

// ReleaseHold releases a hold.
func (c *Client) ReleaseHold(ctx context.Context, id string) (archive.Hold, error) {
	var out archive.Hold
	return out, c.Call(ctx, "POST", V1+"/holds/"+seg(id)+"/release", nil, &out)
}

// ExportPath is where requisition exports are asked for (a ZIP answer
// with a hash trailer: "vigie logs export" streams it).
const ExportPath = export.Path
