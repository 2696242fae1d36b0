package apiclient

import (
	"context"
	"net/url"
	"strconv"

	"vigie/controlplane/api"
)

// The IP plan proposals: a technicien proposes a school's zones, the RSSI
// validates them into the draft or refuses them.

// ProposeIPPlan proposes the whole plan of school uai (technicien).
func (c *Client) ProposeIPPlan(ctx context.Context, uai string, req api.IPProposalRequest) (api.IPProposalView, error) {
	var out api.IPProposalView
	return out, c.Call(ctx, "POST", V1+"/schools/"+seg(uai)+"/ip-proposals", req, &out)
}

// IPProposals lists the proposals of the caller's scope, newest first;
// status ("pending", "validated", "refused") and uai filter when set.
func (c *Client) IPProposals(ctx context.Context, status, uai string) ([]api.IPProposalView, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if uai != "" {
		q.Set("uai", uai)
	}
	path := V1 + "/ip-proposals"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return All[api.IPProposalView](ctx, c, path)
}

// IPProposal reads one proposal with its diff.
func (c *Client) IPProposal(ctx context.Context, id int64) (api.IPProposalView, error) {
	var out api.IPProposalView
	return out, c.Call(ctx, "GET", V1+"/ip-proposals/"+strconv.FormatInt(id, 10), nil, &out)
}

// ValidateIPProposal puts a proposal in the draft (RSSI).
func (c *Client) ValidateIPProposal(ctx context.Context, id int64, req api.IPProposalValidate) (api.IPProposalView, error) {
	var out api.IPProposalView
	return out, c.Call(ctx, "POST", V1+"/ip-proposals/"+strconv.FormatInt(id, 10)+"/validate", req, &out)
}

// RefuseIPProposal refuses a proposal with a reason (RSSI).
func (c *Client) RefuseIPProposal(ctx context.Context, id int64, reason string) (api.IPProposalView, error) {
	var out api.IPProposalView
	return out, c.Call(ctx, "POST", V1+"/ip-proposals/"+strconv.FormatInt(id, 10)+"/refuse", api.IPProposalRefusal{Reason: reason}, &out)
}
