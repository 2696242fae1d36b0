package apiclient

import (
	"context"
	"net/url"
	"strconv"

	"vigie/controlplane/report"
)

// YearlyReport is GET /reports/yearly: the yearly joint review of one
// school (uai) or one département (departement, e.g. "67"). Its
// generation is audited by the control plane.
func (c *Client) YearlyReport(ctx context.Context, year int, uai, departement string) (report.Report, error) {
	q := url.Values{"year": {strconv.Itoa(year)}}
	if uai != "" {
		q.Set("uai", uai)
	}
	if departement != "" {
		q.Set("departement", departement)
	}
	var out report.Report
	return out, c.Call(ctx, "GET", V1+"/reports/yearly?"+q.Encode(), nil, &out)
}
