package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"vigie/controlplane/ut1import"
)

// runAdmin talks to the control plane's API with a token, for the RSSI's
// scripts and terminal: block or allow domains, publish, roll back, watch
// the edges, read the audit log.
func runAdmin(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin", stderr)
	server := fs.String("server", envOr("VIGIE_SERVER", "http://127.0.0.1:8080"), "control plane URL (or VIGIE_SERVER)")
	token := fs.String("token", "", "API token (or VIGIE_TOKEN)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigie admin [--server URL] [--token TOKEN] COMMAND ...

Commands:
  lists show [CATEGORY]                          custom lists, or one category's entries
  lists add CATEGORY DOMAIN... [-m COMMENT] [--school UAI] [--list ID]
  lists remove CATEGORY DOMAIN... [--school UAI] [--list ID]
  diff                                           what the draft changes
  publish -m MESSAGE [--force]                   validate, sign and send the draft
  rollback SERIAL [-m MESSAGE]                   republish an earlier version
  versions                                       published versions
  edges [--uai UAI]                              serial applied by each edge, last seen
  audit [--limit N] [--verify]                   the audit log
  import-ut1 URL [--md5 URL]                     import the UT1 lists into the draft`)
	}
	// Global flags come before the command; the command's own follow it.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if *token == "" {
		*token = os.Getenv("VIGIE_TOKEN")
	}
	if *token == "" {
		return usageError("an API token is required (--token or VIGIE_TOKEN)")
	}
	c := &apiClient{server: strings.TrimRight(*server, "/"), token: *token, http: &http.Client{Timeout: 10 * time.Minute}}
	rest := fs.Args()
	return subcommand("admin", rest, map[string]func([]string) error{
		"lists":      func(a []string) error { return adminLists(c, a, stdout, stderr) },
		"diff":       func(a []string) error { return adminDiff(c, a, stdout, stderr) },
		"publish":    func(a []string) error { return adminPublish(c, a, stdout, stderr) },
		"rollback":   func(a []string) error { return adminRollback(c, a, stdout, stderr) },
		"versions":   func(a []string) error { return adminVersions(c, a, stdout, stderr) },
		"edges":      func(a []string) error { return adminEdges(c, a, stdout, stderr) },
		"audit":      func(a []string) error { return adminAudit(c, a, stdout, stderr) },
		"import-ut1": func(a []string) error { return adminImport(c, a, stdout, stderr) },
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// apiClient calls the API and turns problem documents into errors.
type apiClient struct {
	server, token string
	http          *http.Client
}

// apiProblem is an RFC 9457 document returned by the control plane.
type apiProblem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors"`
}

func (p *apiProblem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d)", p.Title, p.Status)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		b.WriteString("\n  - " + e)
	}
	return b.String()
}

func (c *apiClient) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.server+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control plane %s unreachable: %w", c.server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		p := &apiProblem{Status: resp.StatusCode, Title: resp.Status}
		json.Unmarshal(data, p)
		return p
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return nil
}

type adminList struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	School   string `json:"school"`
	Comment  string `json:"comment"`
	Entries  int    `json:"entries"`
}

// allLists reads every page of the custom lists.
func (c *apiClient) allLists() ([]adminList, error) {
	var out []adminList
	err := eachPage(c, "/api/v1/lists?limit=1000", func(items []adminList) { out = append(out, items...) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachPage GETs path (which already carries a query) page after page,
// giving each page's items to fn, until the server names no next cursor.
func eachPage[T any](c *apiClient, path string, fn func([]T)) error {
	cursor := ""
	for {
		var page struct {
			Items []T    `json:"items"`
			Next  string `json:"next"`
		}
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := c.call("GET", p, nil, &page); err != nil {
			return err
		}
		fn(page.Items)
		if page.Next == "" {
			return nil
		}
		cursor = page.Next
	}
}

// pickList finds the custom list of a category (and school), creating it
// when add is set and there is none.
func (c *apiClient) pickList(category, school, explicit string, add bool, stdout io.Writer) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	lists, err := c.allLists()
	if err != nil {
		return "", err
	}
	var match []string
	for _, l := range lists {
		if l.Category == category && l.School == school {
			match = append(match, l.ID)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], nil
	case len(match) > 1:
		return "", fmt.Errorf("category %s has several lists (%s): choose one with --list", category, strings.Join(match, ", "))
	case !add:
		return "", fmt.Errorf("no custom list of category %s%s", category, forSchool(school))
	}
	id := strings.ReplaceAll(category, "_", "-")
	if school != "" {
		id += "-" + strings.ToLower(school)
	}
	if err := c.call("POST", "/api/v1/lists", map[string]string{"id": id, "category": category, "school": school}, nil); err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "created list %s (category %s%s)\n", id, category, forSchool(school))
	return id, nil
}

func forSchool(uai string) string {
	if uai == "" {
		return ""
	}
	return ", school " + uai
}

func adminLists(c *apiClient, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("lists show|add|remove")
	}
	verb := args[0]
	fs := newFlags("admin lists "+verb, stderr)
	comment := fs.String("m", "", "comment kept with the entries")
	school := fs.String("school", "", "UAI of the school the list applies to (per-school exception or block)")
	list := fs.String("list", "", "list identifier, when a category has several")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch verb {
	case "show":
		if fs.NArg() == 0 {
			lists, err := c.allLists()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LIST\tCATEGORY\tSCHOOL\tENTRIES\tCOMMENT")
			for _, l := range lists {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.ID, l.Category, l.School, l.Entries, l.Comment)
			}
			return tw.Flush()
		}
		id, err := c.pickList(fs.Arg(0), *school, *list, false, stdout)
		if err != nil {
			return err
		}
		type entry struct{ Kind, Value, Author, Comment string }
		return eachPage(c, "/api/v1/lists/"+url.PathEscape(id)+"/entries?limit=1000", func(items []entry) {
			for _, e := range items {
				fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", e.Kind, e.Value, e.Author, e.Comment)
			}
		})
	case "add", "remove":
		if fs.NArg() < 2 {
			return usageError("usage: vigie admin lists %s CATEGORY DOMAIN...", verb)
		}
		id, err := c.pickList(fs.Arg(0), *school, *list, verb == "add", stdout)
		if err != nil {
			return err
		}
		path := "/api/v1/lists/" + url.PathEscape(id) + "/entries"
		if verb == "remove" {
			path += "/remove"
		}
		var res struct {
			Changed int `json:"changed"`
		}
		if err := c.call("POST", path, map[string]any{"domains": fs.Args()[1:], "comment": *comment}, &res); err != nil {
			return err
		}
		word := map[string]string{"add": "added to", "remove": "removed from"}[verb]
		fmt.Fprintf(stdout, "%d domain(s) %s %s (draft: publish to apply)\n", res.Changed, word, id)
		return nil
	}
	return usageError("unknown lists subcommand %q (show | add | remove)", verb)
}

func adminDiff(c *apiClient, args []string, stdout, stderr io.Writer) error {
	var d struct {
		From    uint64 `json:"from"`
		Summary string `json:"summary"`
	}
	if err := c.call("GET", "/api/v1/draft/diff", nil, &d); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "draft against version %d: %s\n", d.From, d.Summary)
	return nil
}

func adminPublish(c *apiClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin publish", stderr)
	msg := fs.String("m", "", "why this version (required, kept in the history)")
	force := fs.Bool("force", false, "publish even if nothing changed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *msg == "" {
		return usageError("-m MESSAGE is required")
	}
	var v versionView
	if err := c.call("POST", "/api/v1/publish", map[string]any{"comment": *msg, "force": *force}, &v); err != nil {
		return err
	}
	v.print(stdout, "published")
	return nil
}

type versionView struct {
	Serial     uint64    `json:"serial"`
	Hash       string    `json:"hash"`
	Author     string    `json:"author"`
	Comment    string    `json:"comment"`
	Created    time.Time `json:"created"`
	RollbackOf uint64    `json:"rollback_of"`
	Domains    int       `json:"domains"`
	Size       int64     `json:"size"`
	Diff       struct {
		Summary  string `json:"summary"`
		Sections *struct {
			Changed int   `json:"changed"`
			Total   int   `json:"total"`
			Bytes   int64 `json:"bytes"`
		} `json:"sections"`
	} `json:"diff"`
}

func (v versionView) print(w io.Writer, what string) {
	fmt.Fprintf(w, "%s serial %d (%s), %d domains, %d bytes\n  %s\n", what, v.Serial, short(v.Hash), v.Domains, v.Size, v.Diff.Summary)
	if s := v.Diff.Sections; s != nil {
		fmt.Fprintf(w, "  an up-to-date edge fetches %d of %d sections, %d bytes\n", s.Changed, s.Total, s.Bytes)
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func adminRollback(c *apiClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin rollback", stderr)
	msg := fs.String("m", "", "why")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin rollback SERIAL [-m MESSAGE]")
	}
	var v versionView
	if err := c.call("POST", "/api/v1/versions/"+url.PathEscape(fs.Arg(0))+"/rollback", map[string]any{"comment": *msg}, &v); err != nil {
		return err
	}
	v.print(stdout, fmt.Sprintf("rolled back to %d as", v.RollbackOf))
	return nil
}

func adminVersions(c *apiClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin versions", stderr)
	limit := fs.Int("limit", 20, "how many, newest first")
	if err := parse(fs, args); err != nil {
		return err
	}
	var page struct {
		Items []versionView `json:"items"`
	}
	if err := c.call("GET", fmt.Sprintf("/api/v1/versions?limit=%d", *limit), nil, &page); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tDATE\tAUTHOR\tHASH\tCOMMENT\tCHANGES")
	for _, v := range page.Items {
		comment := v.Comment
		if v.RollbackOf != 0 {
			comment = fmt.Sprintf("[rollback to %d] %s", v.RollbackOf, comment)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Serial, v.Created.Local().Format("2006-01-02 15:04"), v.Author, short(v.Hash), comment, v.Diff.Summary)
	}
	return tw.Flush()
}

func adminEdges(c *apiClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin edges", stderr)
	uai := fs.String("uai", "", "only this school's edges")
	if err := parse(fs, args); err != nil {
		return err
	}
	var health struct {
		Serial uint64 `json:"serial"`
	}
	if err := c.call("GET", "/api/v1/health", nil, &health); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(stdout, "published serial: %d\n", health.Serial)
	fmt.Fprintln(tw, "EDGE\tUAI\tAPPLIED\tUP TO DATE\tONLINE\tLAST SEEN\tVERSION\tLAST ERROR")
	type edgeView struct {
		ID            string    `json:"id"`
		UAI           string    `json:"uai"`
		AppliedSerial uint64    `json:"applied_serial"`
		UpToDate      bool      `json:"up_to_date"`
		Unknown       bool      `json:"unknown_version"`
		Online        bool      `json:"online"`
		LastSeen      time.Time `json:"last_seen"`
		Software      string    `json:"software"`
		LastError     string    `json:"last_error"`
	}
	q := url.Values{"limit": {"1000"}}
	if *uai != "" {
		q.Set("uai", *uai)
	}
	err := eachPage(c, "/api/v1/edges?"+q.Encode(), func(items []edgeView) {
		for _, e := range items {
			seen := "never"
			if !e.LastSeen.IsZero() {
				seen = time.Since(e.LastSeen).Round(time.Second).String() + " ago"
			}
			upToDate := yesNo(e.UpToDate)
			if e.Unknown {
				upToDate = "NO (version inconnue)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.UAI, e.AppliedSerial, upToDate, yesNo(e.Online), seen, e.Software, e.LastError)
		}
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func adminAudit(c *apiClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin audit", stderr)
	limit := fs.Int("limit", 50, "how many of the latest entries")
	verify := fs.Bool("verify", false, "verify the hash chain instead of listing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *verify {
		var v struct {
			OK          bool   `json:"ok"`
			Entries     uint64 `json:"entries"`
			HeadSeq     uint64 `json:"head_seq"`
			Head        string `json:"head"`
			AnchorError string `json:"anchor_error"`
			Problem     *struct {
				Seq    uint64 `json:"seq"`
				Reason string `json:"reason"`
			} `json:"problem"`
		}
		if err := c.call("GET", "/api/v1/audit/verify", nil, &v); err != nil {
			return err
		}
		if !v.OK {
			if v.Problem != nil {
				fmt.Fprintf(stdout, "AUDIT CHAIN BROKEN at entry %d: %s\n", v.Problem.Seq, v.Problem.Reason)
			}
			if v.AnchorError != "" {
				fmt.Fprintln(stdout, "AUDIT CHAIN BROKEN:", v.AnchorError)
			}
			return exitError(1)
		}
		fmt.Fprintf(stdout, "audit chain verified: %d entries, head %d %s (note it to detect a later truncation)\n", v.Entries, v.HeadSeq, v.Head)
		return nil
	}
	// The latest entries: page to the end, keeping the last limit.
	type entry struct {
		Seq    uint64          `json:"seq"`
		Time   time.Time       `json:"time"`
		Actor  string          `json:"actor"`
		Role   string          `json:"role"`
		Action string          `json:"action"`
		Target string          `json:"target"`
		After  json.RawMessage `json:"after"`
	}
	var keep []entry
	err := eachPage(c, "/api/v1/audit?limit=1000", func(items []entry) {
		keep = append(keep, items...)
		if len(keep) > *limit {
			keep = keep[len(keep)-*limit:]
		}
	})
	if err != nil {
		return err
	}
	for _, e := range keep {
		after := string(e.After)
		if len(after) > 120 {
			after = after[:117] + "..."
		}
		fmt.Fprintf(stdout, "%6d %s %-14s %-20s %-24s %s\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Target, after)
	}
	return nil
}

func adminImport(c *apiClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin import-ut1", stderr)
	md5 := fs.String("md5", "", "URL of the MD5 file (default: MD5SUM.LST beside the tarball)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin import-ut1 https://.../blacklists.tar.gz [--md5 URL]")
	}
	var res ut1import.Result
	if err := c.call("POST", "/api/v1/imports/ut1", map[string]string{"url": fs.Arg(0), "md5_url": *md5}, &res); err != nil {
		return err
	}
	printImport(stdout, &res)
	fmt.Fprintln(stdout, "The draft now uses this tree; publish to send it to the schools.")
	return nil
}
