package ui

// The texts of the requisition search page (who.go, who.html), kept
// beside the page they serve and merged into the French catalogue once,
// before any page is rendered.
var frWho = catalog{
	"who.title":         "Qui était derrière cette adresse\u00a0?",
	"who.lead":          "Une réquisition nomme le plus souvent une adresse publique, un port et un instant. Vigie retrouve le flux qui avait cette adresse et ce port, le poste, son adresse MAC et l'utilisateur connus au moment de l'enregistrement, et la navigation du poste autour de cet instant. Chaque recherche est consignée dans le journal d'audit.",
	"who.link":          "Chercher qui était derrière une adresse publique et un port",
	"who.ip":            "Adresse publique",
	"who.port":          "Port source",
	"who.port.hint":     "facultatif",
	"who.at":            "Instant",
	"who.tolerance":     "Tolérance",
	"who.search":        "Chercher",
	"who.none":          "Aucune connexion n'avait cette adresse et ce port à cet instant dans les journaux de votre périmètre.",
	"who.count":         "%d connexion(s) trouvée(s).",
	"who.school":        "Établissement",
	"who.flow":          "Flux",
	"who.client":        "Poste",
	"who.mac":           "Adresse MAC",
	"who.user":          "Utilisateur",
	"who.nat":           "Adresse et port traduits",
	"who.start":         "Début",
	"who.end":           "Fin",
	"who.dest":          "Destination",
	"who.zone":          "Zone",
	"who.verdict":       "Verdict",
	"who.edge":          "Connexion ouverte par la passerelle (%s)\u00a0: postes ayant joint la même destination pendant ce flux",
	"who.navigation":    "Navigation du poste autour de cet instant",
	"who.host":          "Site ou adresse",
	"who.export.title":  "Exporter la réponse",
	"who.export.lead":   "L'export contient les enregistrements du poste trouvé sur la durée du flux, cinq minutes avant et après, signés par l'académie\u00a0; la référence de la réquisition et l'adresse recherchée figurent dans son résumé.",
	"who.export.submit": "Exporter (ZIP signé)",
	"who.badport":       "Port «\u00a0%s\u00a0»\u00a0: un nombre entre 0 et 65535 est attendu.",
}

func init() {
	for k, v := range frWho {
		fr[k] = v
	}
	for k, v := range typoCatalog(frWho) {
		current[k] = v
	}
	funcs["whoTime"] = whoTime
}
