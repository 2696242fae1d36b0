package ui

// The texts of the IP plan proposals (ipplan.go, ipplans.html,
// ipplan.html, ipplanform.html), kept beside the pages they serve and
// merged into the French catalogue once, before any page is rendered.
var frIPPlan = catalog{
	"nav.ipplans":              "Plans d'adressage",
	"ipplan.title":             "Plans d'adressage proposés",
	"ipplan.lead.rssi":         "Les techniciens des départements proposent le plan d'adressage d'un établissement : ses plages d'adresses et le profil de chaque zone. Le plan est validé conjointement (convention, article 4-3) : lisez les différences avec le brouillon, puis validez la proposition, qui entre dans le brouillon, ou refusez-la en disant pourquoi.",
	"ipplan.lead.tech":         "Proposez le plan d'adressage d'un établissement de votre périmètre : ses plages d'adresses et le profil de chaque zone. Le RSSI de l'académie le valide, et il s'applique à la publication suivante, ou le refuse en vous disant pourquoi.",
	"ipplan.new.title":         "Proposer un plan d'adressage",
	"ipplan.new.submit":        "Ouvrir le plan de cet établissement",
	"ipplan.new.none":          "Aucun établissement dans votre périmètre.",
	"ipplan.pending.one":       "%s proposition en attente",
	"ipplan.pending.many":      "%s propositions en attente",
	"ipplan.pending.none":      "Aucune proposition en attente.",
	"ipplan.done":              "Propositions traitées",
	"ipplan.done.none":         "Aucune proposition traitée.",
	"ipplan.number":            "N°",
	"ipplan.item":              "Proposition n° %d",
	"ipplan.by":                "Proposée par",
	"ipplan.changes":           "Changements",
	"ipplan.decision":          "Décision",
	"ipplan.decided":           "Décidée par",
	"ipplan.state":             "État",
	"ipplan.state.pending":     "En attente",
	"ipplan.state.validated":   "Validée",
	"ipplan.state.refused":     "Refusée",
	"ipplan.change":            "Changement",
	"ipplan.change.added":      "zone ajoutée",
	"ipplan.change.removed":    "zone retirée",
	"ipplan.change.changed":    "modifiée",
	"ipplan.change.unchanged":  "inchangée",
	"ipplan.summary.none":      "aucun",
	"ipplan.show.title":        "Proposition de plan d'adressage",
	"ipplan.show.h1":           "Proposition n° %d",
	"ipplan.diff.pending":      "Différences avec le plan du brouillon",
	"ipplan.diff.decided":      "Différences avec le plan remplacé",
	"ipplan.diff.caption":      "Zones du plan proposé, comparées zone par zone",
	"ipplan.reason":            "Raison du refus",
	"ipplan.reason.hint":       "le technicien la lira",
	"ipplan.rssi.comment":      "Mot du RSSI",
	"ipplan.decide.title":      "Décision",
	"ipplan.validate.comment":  "Mot pour le technicien",
	"ipplan.validate.submit":   "Valider : mettre ce plan dans le brouillon",
	"ipplan.validate.hint":     "Le plan remplace celui de l'établissement dans le brouillon ; il s'applique à la prochaine publication.",
	"ipplan.validate.confirm":  "Mettre ce plan d'adressage dans le brouillon pour %s ?",
	"ipplan.refuse.submit":     "Refuser la proposition",
	"ipplan.propose.link":      "Proposer une modification du plan d'adressage",
	"ipplan.form.title":        "Proposer un plan d'adressage",
	"ipplan.form.h1":           "Plan d'adressage proposé pour %s",
	"ipplan.form.lead":         "Modifiez les plages d'adresses et le profil de chaque zone, puis dites pourquoi. Le plan proposé remplace celui de l'établissement une fois validé par le RSSI de l'académie.",
	"ipplan.form.hint":         "Une ligne par zone : son nom, ses plages (10.67.12.0/24, séparées par des virgules), ses interfaces éventuelles et son profil. Videz une ligne pour retirer la zone. La zone pédagogique (élèves) reçoit toujours un profil filtré.",
	"ipplan.form.comment.hint": "pourquoi le plan change : le RSSI le lira",
	"ipplan.form.submit":       "Envoyer la proposition au RSSI",
	"ipplan.form.submit.hint":  "Rien ne change dans les établissements avant la validation et la publication.",
	"ipplan.err.stale":         "Le brouillon a changé depuis que vous avez lu ces différences : relisez-les avant de valider.",
	"ipplan.err.zone":          "Zone « %s » : %s",
	"flash.ipproposed":         "Votre proposition est envoyée au RSSI de l'académie. Vous verrez ici sa décision.",
	"flash.ipvalidated":        "La proposition est validée : le plan d'adressage est dans le brouillon. Publiez pour l'appliquer.",
	"flash.iprefused":          "La proposition est refusée ; le technicien lit votre raison sur cette page.",
	"action.ipplan.propose":    "Plan d'adressage proposé",
	"action.ipplan.validate":   "Plan d'adressage validé",
	"action.ipplan.refuse":     "Plan d'adressage refusé",
	"field.zones":              "Plan d'adressage",
	"field.reason":             "Raison",
}

func init() {
	for k, v := range frIPPlan {
		fr[k] = v
	}
	for k, v := range typoCatalog(frIPPlan) {
		current[k] = v
	}
}
