package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"vigie/controlplane/logs"
	"vigie/journal/export"
	"vigie/journal/who"
)

// logsWho is "vigie logs who": the usual requisition ("public address,
// port, time: who was it?") asked of the control plane, answered in
// French, and with -o exported as a signed ZIP.
func logsWho(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs who", stderr)
	api := addAPIFlags(fs, "")
	var req logs.WhoRequest
	fs.StringVar(&req.IP, "ip", "", "public address named by the requisition (required)")
	port := fs.Uint("port", 0, "public source port (0: any)")
	fs.StringVar(&req.At, "at", "", "time, e.g. 2026-03-12T14:32:05+01:00 or \"2026-03-12 14:32:05\" (Paris time) (required)")
	tol := fs.Duration("tolerance", 2*time.Second, "tolerance around the time")
	fs.StringVar(&req.UAI, "uai", "", "search this school only")
	fs.StringVar(&req.Reference, "reference", "", "requisition reference (required with -o)")
	fs.StringVar(&req.Motive, "motive", "", "motive of the export (default: answer to requisition REFERENCE)")
	out := fs.String("o", "", "export the client's records as a signed ZIP to this file")
	pubPath := fs.String("pubkey", "", "académie public key (PEM): verify the export once downloaded")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case req.IP == "" || req.At == "":
		return usageError("--ip and --at are required")
	case *port > 65535:
		return usageError("--port %d: not a port", *port)
	case *out != "" && req.Reference == "":
		return usageError("--reference is required with -o (the requisition's reference)")
	}
	if _, err := netip.ParseAddr(req.IP); err != nil {
		return usageError("--ip: %v", err)
	}
	if _, err := export.ParseTime(req.At); err != nil {
		return usageError("--at: %v", err)
	}
	req.Port = uint16(*port)
	req.Tolerance = tol.String()
	// An export of a long period takes minutes to build and download.
	c, err := api.client("logs who", true, 30*time.Minute)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	path := logs.WhoPath
	if *out != "" {
		path = logs.WhoExportPath
	}
	hreq, err := c.Request(ctx, http.MethodPost, path, req)
	if err != nil {
		return usageError("--server: %v", err)
	}
	if *out != "" {
		hreq.Header.Set("Accept", "application/zip")
	}
	resp, err := c.HTTP.Do(hreq)
	if err != nil {
		return fmt.Errorf("logs who: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var p struct{ Title, Detail string }
		if json.Unmarshal(b, &p) == nil && p.Title != "" {
			return fmt.Errorf("recherche refusée (HTTP %d) : %s : %s", resp.StatusCode, p.Title, p.Detail)
		}
		return fmt.Errorf("recherche refusée (HTTP %d) : %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if *out != "" {
		return saveExport(resp, *out, *pubPath, stdout, stderr)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("logs who: %w", err)
	}
	if *asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	var ans who.Answer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("logs who: answer: %w", err)
	}
	printWho(stdout, &ans)
	return nil
}

func printWho(w io.Writer, a *who.Answer) {
	port := "tout port"
	if a.Port != 0 {
		port = fmt.Sprintf("port %d", a.Port)
	}
	fmt.Fprintf(w, "Adresse publique %s, %s, le %s (± %s) : %d correspondance(s)\n", a.Addr, port,
		a.At.In(export.Paris).Format("02/01/2006 à 15:04:05"), a.Tolerance, len(a.Matches))
	hm := func(t time.Time) string { return t.In(export.Paris).Format("15:04:05") }
	for _, m := range a.Matches {
		f := m.Flow
		fmt.Fprintf(w, "\nÉtablissement %s\n", m.UAI)
		end := ""
		if !f.End.IsZero() {
			end = " au " + hm(f.End)
		}
		fmt.Fprintf(w, "  Flux %s %s → %s, traduit en %s, du %s%s, zone %s, verdict %s\n", f.Proto, f.Client, f.Dest, f.NAT, hm(f.Time), end, f.Zone, f.Verdict)
		if f.Zone == "edge" {
			fmt.Fprintf(w, "  Connexion ouverte par la passerelle (%s) ; connexions des postes vers la même destination pendant ce flux :\n", f.Link)
			for _, c := range m.Candidates {
				fmt.Fprintf(w, "    %s %s MAC %s utilisateur %s (%s, %s)\n", hm(c.Time), c.Client, orDash(c.MAC), orDash(c.User), c.Proto, orDash(c.Host))
			}
		} else {
			fmt.Fprintf(w, "  Poste %s, MAC %s, utilisateur %s\n", f.Client, orDash(f.MAC), orDash(f.User))
		}
		if len(m.Navigation) > 0 {
			fmt.Fprintf(w, "  Navigation du poste autour de l'instant :\n")
			for _, n := range m.Navigation {
				what := n.Host
				if n.URL != "" {
					what = n.URL
				}
				fmt.Fprintf(w, "    %s %s %s %s\n", hm(n.Time), n.Proto, what, n.Verdict)
			}
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
