package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// The summary is the page a chef d'établissement prints and attaches to
// the answer to the requisition: what was asked, what is in the archive,
// and how anyone can check it. It is built from the manifest alone.

var summaryTmpl = template.Must(template.New("resume").Funcs(template.FuncMap{
	"date":  frenchDate,
	"group": groupDigits,
}).Parse(`<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>Extraction du journal – {{.M.Reference}}</title>
<style>
@page { size: A4; margin: 15mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; color: #000; max-width: 180mm; margin: 0 auto; }
h1 { font-size: 15pt; margin: 0 0 2mm; }
h2 { font-size: 11pt; margin: 5mm 0 1.5mm; border-bottom: 1px solid #444; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.8mm 1.5mm; border: 1px solid #bbb; }
th { background: #eee; font-weight: 600; }
dl { display: grid; grid-template-columns: 42mm 1fr; gap: 0.8mm 3mm; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 7.5pt; word-break: break-all; }
.note { font-size: 8.5pt; color: #333; }
.ok { font-weight: 600; }
.warn { font-weight: 600; color: #a00; }
</style>
</head>
<body>
<h1>Extraction du journal de connexions</h1>
<p class="note">Document produit par Vigie{{with .M.Academie}} ({{.}}){{end}}. Il résume le contenu de l'archive signée qui l'accompagne.</p>

<h2>Réquisition</h2>
<dl>
<dt>Référence</dt><dd>{{.M.Reference}}</dd>
<dt>Motif</dt><dd>{{.M.Motif}}</dd>
<dt>Établissement</dt><dd>{{with .M.Requete.Etablissement}}{{.}} – {{end}}UAI {{.M.Requete.UAI}}</dd>
<dt>Période</dt><dd>du {{date .M.Requete.Debut}}<br>au {{date .M.Requete.Fin}} (exclu)</dd>
<dt>Critères</dt><dd>{{if .M.Requete.Filtered}}{{with .M.Requete.Client}}adresse du poste {{.}}; {{end}}{{with .M.Requete.MAC}}adresse MAC {{.}}; {{end}}{{with .M.Requete.Utilisateur}}utilisateur {{.}}; {{end}}{{with .M.Requete.Domaine}}domaine {{.}} et ses sous-domaines{{end}}{{else}}aucun : tous les enregistrements de l'établissement sur la période{{end}}</dd>
<dt>Extraction</dt><dd>par {{.M.Exportateur}}{{with .M.Role}} ({{.}}){{end}}, le {{date .M.CreeLe}}</dd>
</dl>

<h2>Contenu</h2>
<table>
<tr><th>Fichier</th><th>Enregistrements</th><th>Empreinte SHA-256</th></tr>
{{range .Files}}<tr><td>{{.Nom}}</td><td>{{.Records}}</td><td class="hash">{{.SHA256}}</td></tr>
{{end}}</table>
<p class="note">connexions : identification des connexions (poste, adresse MAC et utilisateur lorsqu'ils sont connus au moment de l'enregistrement, ports, adresse et port traduits côté internet, destination, début et fin, volumes, zone) ; navigation : sites et adresses consultés et décision du filtrage. Les fichiers .csv s'ouvrent dans un tableur (séparateur point-virgule, UTF-8) ; les fichiers .jsonl contiennent les mêmes enregistrements avec les éléments de chaînage. Heures de Paris, au format ISO 8601. Verdict : allow = autorisé, block = bloqué, drop = rejeté par le pare-feu (motif du rejet indiqué), gap = enregistrements perdus par l'équipement (nombre indiqué), arret_brutal = arrêt brutal de l'équipement, enregistrements possiblement perdus dans l'intervalle indiqué ; jamais omis en silence. Lien : proxy ou dns lorsque le même flux est aussi journalisé par le proxy ou le filtre DNS (leurs enregistrements en donnent le détail).</p>

<h2>Intégrité et complétude</h2>
{{if .M.Chaines}}<table>
<tr><th>Flux</th><th>Séquences</th><th>Sur la période</th><th>Exportés</th><th>Lacunes</th></tr>
{{range .M.Chaines}}<tr><td>{{.Flux}}</td><td>{{.PremierSeq}} à {{.DernierSeq}}</td><td>{{group .Periode}}</td><td>{{group .Exportes}}</td><td>{{if .Lacunes}}{{range .Lacunes}}{{.First}}–{{.Last}} {{end}}{{else}}aucune{{end}}</td></tr>
{{end}}</table>
{{else}}<p>Aucun enregistrement sur la période demandée.</p>{{end}}
{{range .M.Chaines}}{{$flux := .Flux}}{{range .ArretsBrutaux}}<p class="warn">Flux {{$flux}}, séquence {{.Seq}} : {{.Texte}}.</p>
{{end}}{{end}}<p>Chaque enregistrement est chaîné au précédent par une empreinte SHA-256 calculée par l'équipement de l'établissement au moment de l'écriture. {{if .Complete}}<span class="ok">Sans critère de filtre et sans lacune, l'extraction contient la suite complète des enregistrements de chaque chaîne sur la période ; la vérification le démontre.</span>{{else}}La vérification contrôle chaque enregistrement extrait et son chaînage ; la complétude de la sélection est attestée par la signature de l'académie.{{end}}</p>

<h2>Vérification</h2>
<p>Le fichier manifest.json récapitule la requête et les empreintes de tous les fichiers ; manifest.sig en est la signature Ed25519 par la plateforme de l'académie. Pour tout vérifier, hors ligne :</p>
<p class="hash">vigie logs verify ARCHIVE.zip --pubkey CLE_PUBLIQUE_ACADEMIE.pem</p>
<p>Empreinte de la clé de signature (à comparer avec celle publiée par l'académie) :</p>
<p class="hash">{{.KeyFingerprint}}</p>
</body>
</html>
`))

type summaryFile struct {
	Nom, SHA256, Records string
}

func renderSummary(m *Manifest) ([]byte, error) {
	data := struct {
		M              *Manifest
		Files          []summaryFile
		Complete       bool
		KeyFingerprint string
	}{M: m, Complete: !m.Requete.Filtered()}
	for _, f := range m.Fichiers {
		stream, _, _ := strings.Cut(f.Nom, ".")
		data.Files = append(data.Files, summaryFile{Nom: f.Nom, SHA256: f.SHA256, Records: groupDigits(m.Comptes[stream])})
	}
	for _, c := range m.Chaines {
		// A declared unclean stop means records may be missing with no
		// sequence gap to show it: the chain is whole, the record may not be.
		if len(c.Lacunes) > 0 || len(c.ArretsBrutaux) > 0 || c.Periode != c.Plage || c.Exportes != c.Periode || uint64(c.Plage) != c.DernierSeq-c.PremierSeq+1 {
			data.Complete = false
		}
	}
	if key, err := base64.StdEncoding.DecodeString(m.ClePublique); err == nil {
		sum := sha256.Sum256(key)
		data.KeyFingerprint = "SHA-256:" + hex.EncodeToString(sum[:])
	}
	var b bytes.Buffer
	if err := summaryTmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("export: summary: %w", err)
	}
	return b.Bytes(), nil
}

var frenchMonths = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}

// frenchDate writes an ISO 8601 time as "2 mars 2026 à 09:15:04 (heure de Paris)".
func frenchDate(s string) string {
	t, err := parseTime(s)
	if err != nil {
		return s
	}
	t = t.In(Paris)
	day := fmt.Sprint(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return fmt.Sprintf("%s %s %d à %s (heure de Paris)", day, frenchMonths[t.Month()-1], t.Year(), t.Format(time.TimeOnly))
}

// groupDigits writes 1234567 as "1 234 567" (French thousands separator,
// a narrow no-break space).
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}
