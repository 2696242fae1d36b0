package apiclient

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"vigie/controlplane/api"
	"vigie/controlplane/store"
	"vigie/rules"
)

// The routes the web interface reads beyond the command line's: one page
// of a collection at a time, single objects, and the unblock requests'
// settings and school exceptions.

// page reads one page of a collection after cursor ("" for the first).
func page[T any](ctx context.Context, c *Client, path, cursor string, limit int) (Page[T], error) {
	u := path + "?limit=" + strconv.Itoa(limit)
	if cursor != "" {
		u += "&cursor=" + url.QueryEscape(cursor)
	}
	var p Page[T]
	return p, c.Call(ctx, "GET", u, nil, &p)
}

// VersionsPage is one page of the published versions, newest first.
func (c *Client) VersionsPage(ctx context.Context, cursor string, limit int) (Page[store.Version], error) {
	return page[store.Version](ctx, c, V1+"/versions", cursor, limit)
}

// Version reads one published version.
func (c *Client) Version(ctx context.Context, serial uint64) (store.Version, error) {
	var out store.Version
	return out, c.Call(ctx, "GET", fmt.Sprintf("%s/versions/%d", V1, serial), nil, &out)
}

// AllCategories lists the categories, published and declared in the draft.
func (c *Client) AllCategories(ctx context.Context) ([]rules.CategoryInfo, error) {
	return All[rules.CategoryInfo](ctx, c, V1+"/categories")
}

// List reads one custom list.
func (c *Client) List(ctx context.Context, id string) (store.List, error) {
	var out store.List
	return out, c.Call(ctx, "GET", V1+"/lists/"+seg(id), nil, &out)
}

// EntriesPage is one page of a list's entries.
func (c *Client) EntriesPage(ctx context.Context, id, cursor string, limit int) (Page[store.Entry], error) {
	return page[store.Entry](ctx, c, V1+"/lists/"+seg(id)+"/entries", cursor, limit)
}

// UserTokens lists the API tokens of an account.
func (c *Client) UserTokens(ctx context.Context, login string) ([]store.APIToken, error) {
	return All[store.APIToken](ctx, c, V1+"/users/"+seg(login)+"/tokens")
}

// RevokeUserToken revokes an API token of an account.
func (c *Client) RevokeUserToken(ctx context.Context, login, id string) error {
	return c.Call(ctx, "DELETE", V1+"/users/"+seg(login)+"/tokens/"+seg(id), nil, nil)
}

// Refusal finds a refusal by the reference its block page showed; out
// receives the answer (controlplane/logs.Refusal).
func (c *Client) Refusal(ctx context.Context, ref string, out any) error {
	return c.Call(ctx, "GET", V1+"/logs/refs/"+seg(ref), nil, out)
}

// UnblockSettings says who approves teachers' unblock requests.
func (c *Client) UnblockSettings(ctx context.Context) (api.UnblockSettings, error) {
	var out api.UnblockSettings
	return out, c.Call(ctx, "GET", V1+"/settings/unblock", nil, &out)
}

// PutUnblockSettings changes who approves them (RSSI).
func (c *Client) PutUnblockSettings(ctx context.Context, s api.UnblockSettings) (api.UnblockSettings, error) {
	var out api.UnblockSettings
	return out, c.Call(ctx, "PUT", V1+"/settings/unblock", s, &out)
}

// AddSchoolExceptions adds entries to a school's exception list (created
// on first use): the RSSI's, or a chef's for their school when the
// setting allows.
func (c *Client) AddSchoolExceptions(ctx context.Context, uai string, ch api.EntriesChange) (api.SchoolExceptions, error) {
	var out api.SchoolExceptions
	return out, c.Call(ctx, "POST", V1+"/schools/"+seg(uai)+"/exceptions", ch, &out)
}
