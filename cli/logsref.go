package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"vigie/controlplane/logs"
	"vigie/journal/export"
)

// logsRef is "vigie logs ref Q3R6-RPAY": the refusal a block page's
// reference names, as the control plane's archive holds it.
func logsRef(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs ref", stderr)
	api := addAPIFlags(fs, "")
	uai := fs.String("uai", "", "school UAI (default: the chef's own school; every school for the RSSI)")
	from := fs.String("from", "", "start of the search (default: 31 days before --to)")
	to := fs.String("to", "", "end of the search (default: now)")
	asJSON := fs.Bool("json", false, "print the API's answer as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie logs ref REFERENCE [--uai UAI] [--from T] [--to T] [--json]")
	}
	c, err := api.client("logs ref", true, 0)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"uai": *uai, "from": *from, "to": *to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/api/v1/logs/refs/" + url.PathEscape(fs.Arg(0))
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	a := &admin{c: c, ctx: context.Background(), json: *asJSON, out: stdout, err: stderr}
	var r logs.Refusal
	if err := c.Call(a.ctx, "GET", path, nil, &r); err != nil {
		return fmt.Errorf("logs ref: %w", err)
	}
	return a.emit(r, func(tw *tabwriter.Writer) {
		line := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "%s\t%s\n", k, v)
			}
		}
		line("Référence", r.Reference)
		line("Établissement", r.UAI)
		line("Heure", r.Time.In(export.Paris).Format("02/01/2006 15:04:05 (heure de Paris)"))
		line("Poste", r.Client)
		line("Zone", r.Zone)
		line("MAC", r.MAC)
		line("Utilisateur", r.User)
		line("Hôte", r.Host)
		line("URL", r.URL)
		line("Décision", r.Verdict)
		line("Catégorie", r.Category)
		if r.Entry != nil {
			line("Entrée", fmt.Sprintf("%s %s de la liste %s (catégorie %s, version %d)", r.Entry.Kind, r.Entry.Entry, r.Entry.List, r.Entry.Category, r.Serial))
		} else {
			line("Entrée", "introuvable dans la version en vigueur à cette heure")
		}
		line("Enregistrement", fmt.Sprintf("navigation n° %d", r.Seq))
	})
}
