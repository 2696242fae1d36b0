package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"vigie/journal/export"
	"vigie/keyfile"
)

// runLogs is "vigie logs export" (ask the control plane for a requisition
// export), "vigie logs verify" (check one offline) and "vigie logs who"
// (who had a public address and port at a time).
func runLogs(args []string, stdout, stderr io.Writer) error {
	return subcommand("logs", args, map[string]func([]string) error{
		"export": func(a []string) error { return logsExport(a, stdout, stderr) },
		"verify": func(a []string) error { return logsVerify(a, stdout, stderr) },
		"who":    func(a []string) error { return logsWho(a, stdout, stderr) },
		"ref":    func(a []string) error { return logsRef(a, stdout, stderr) },
	})
}

func logsExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs export", stderr)
	api := addAPIFlags(fs, "")
	var req export.APIRequest
	fs.StringVar(&req.UAI, "uai", "", "school UAI (required)")
	fs.StringVar(&req.From, "from", "", "start of the period, e.g. 2026-03-02T08:00:00+01:00 or \"2026-03-02 08:00\" (Paris time) (required)")
	fs.StringVar(&req.To, "to", "", "end of the period, excluded (required)")
	fs.StringVar(&req.Client, "client", "", "only this client address")
	fs.StringVar(&req.MAC, "mac", "", "only this MAC address")
	fs.StringVar(&req.User, "user", "", "only this user")
	fs.StringVar(&req.Domain, "domain", "", "only this domain and its subdomains")
	fs.StringVar(&req.Reference, "reference", "", "requisition reference, e.g. the procès-verbal number (required)")
	fs.StringVar(&req.Motive, "motive", "", "motive of the export (default: answer to requisition REFERENCE)")
	out := fs.String("o", "", "ZIP file to write (required)")
	pubPath := fs.String("pubkey", "", "académie public key (PEM): verify the export once downloaded")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case req.UAI == "" || req.From == "" || req.To == "":
		return usageError("--uai, --from and --to are required")
	case req.Reference == "":
		return usageError("--reference is required (the requisition's reference)")
	case *out == "":
		return usageError("-o FILE.zip is required")
	}
	// Check times here, so a typo costs no round trip.
	if _, err := export.ParseTime(req.From); err != nil {
		return usageError("--from: %v", err)
	}
	if _, err := export.ParseTime(req.To); err != nil {
		return usageError("--to: %v", err)
	}
	if req.Motive == "" {
		req.Motive = "Réponse à la réquisition " + req.Reference
	}
	// An export of a long period takes minutes to build and download.
	c, err := api.client("logs export", true, 30*time.Minute)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hreq, err := c.Request(ctx, http.MethodPost, export.Path, req)
	if err != nil {
		return usageError("--server: %v", err)
	}
	hreq.Header.Set("Accept", "application/zip")
	resp, err := c.HTTP.Do(hreq)
	if err != nil {
		return fmt.Errorf("logs export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var p struct{ Title, Detail string }
		if json.Unmarshal(b, &p) == nil && p.Title != "" {
			return fmt.Errorf("export refusé (HTTP %d) : %s : %s", resp.StatusCode, p.Title, p.Detail)
		}
		return fmt.Errorf("export refusé (HTTP %d) : %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return saveExport(resp, *out, *pubPath, stdout, stderr)
}

func logsVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs verify", stderr)
	pubPath := fs.String("pubkey", "", "académie public key, PEM (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie logs verify FILE.zip --pubkey PUB.pem")
	}
	if *pubPath == "" {
		return usageError("--pubkey is required")
	}
	return verifyAndReport(fs.Arg(0), *pubPath, stdout, stderr)
}

// verifyAndReport verifies an export and prints the result in French; a
// failure names the problem and exits with status 1.
func verifyAndReport(path, pubPath string, stdout, stderr io.Writer) error {
	pub, err := keyfile.LoadPublic(pubPath)
	if err != nil {
		return err
	}
	res, err := export.VerifyFile(path, pub)
	if err != nil {
		fmt.Fprintf(stderr, "ÉCHEC de la vérification de %s\n  %v\n", path, err)
		return exitError(1)
	}
	m := res.Manifest
	school := m.Requete.UAI
	if m.Requete.Etablissement != "" {
		school = m.Requete.Etablissement + " (" + m.Requete.UAI + ")"
	}
	fmt.Fprintf(stdout, "Vérification réussie : %s\n", path)
	fmt.Fprintf(stdout, "  Référence      : %s\n", m.Reference)
	fmt.Fprintf(stdout, "  Motif          : %s\n", m.Motif)
	fmt.Fprintf(stdout, "  Établissement  : %s\n", school)
	fmt.Fprintf(stdout, "  Période        : du %s au %s (exclu)\n", m.Requete.Debut, m.Requete.Fin)
	if m.Requete.Filtered() {
		var f []string
		for _, kv := range [][2]string{{"client", m.Requete.Client}, {"MAC", m.Requete.MAC}, {"utilisateur", m.Requete.Utilisateur}, {"domaine", m.Requete.Domaine}} {
			if kv[1] != "" {
				f = append(f, kv[0]+" "+kv[1])
			}
		}
		fmt.Fprintf(stdout, "  Critères       : %s\n", strings.Join(f, ", "))
	}
	fmt.Fprintf(stdout, "  Exporté par    : %s (%s), le %s\n", m.Exportateur, m.Role, m.CreeLe)
	fmt.Fprintf(stdout, "  Enregistrements: connexions %d, navigation %d\n", res.Records["connexions"], res.Records["navigation"])
	fmt.Fprintf(stdout, "  Signatures     : valides (manifest.sig et archive entière)\n")
	fmt.Fprintf(stdout, "  Empreintes     : %d fichiers conformes au manifeste\n", len(m.Fichiers))
	switch {
	case res.Complete:
		fmt.Fprintf(stdout, "  Chaînage       : vérifié ; l'extraction contient la suite complète des enregistrements de la période\n")
	case m.Requete.Filtered():
		fmt.Fprintf(stdout, "  Chaînage       : vérifié pour chaque enregistrement extrait (sélection filtrée)\n")
	default:
		fmt.Fprintf(stdout, "  Chaînage       : vérifié ; la période comporte des lacunes ou des enregistrements hors période intercalés (voir le manifeste)\n")
	}
	for _, l := range res.Losses {
		fmt.Fprintf(stdout, "  Arrêt brutal   : %s (flux %s, séquence %d)\n", l.Texte, l.Flux, l.Seq)
	}
	if res.Unanchored > 0 {
		fmt.Fprintf(stdout, "  Attention      : %d enregistrement(s) en début de série dont le maillon précédent n'est plus archivé (couverts par la signature seule)\n", res.Unanchored)
	}
	return nil
}

// saveExport writes a ZIP response beside out, checks its SHA-256 against
// the server's trailer, renames it into place and verifies it when a
// public key is given.
func saveExport(resp *http.Response, out, pubPath string, stdout, stderr io.Writer) error {
	// Write beside the target, then rename: a partial download never
	// looks like an export.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".vigie-export-*")
	if err != nil {
		return fmt.Errorf("logs export: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("logs export: download: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want := resp.Trailer.Get(export.HashTrailer); want == "" {
		return errors.New("logs export: the server did not confirm the end of the export (no hash trailer): the download is incomplete")
	} else if want != sum {
		return fmt.Errorf("logs export: download damaged: SHA-256 %s, the server sent %s", sum, want)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("logs export: %w", err)
	}
	fmt.Fprintf(stdout, "Export enregistré : %s (%d octets)\nSHA-256 de l'archive : %s\n", out, n, sum)
	if pubPath != "" {
		return verifyAndReport(out, pubPath, stdout, stderr)
	}
	fmt.Fprintf(stdout, "Vérifiez-le avec : vigie logs verify %s --pubkey CLE_PUBLIQUE_ACADEMIE.pem\n", out)
	return nil
}
