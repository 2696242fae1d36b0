package ui

import "time"

// The texts of the yearly review (report.go, report.html,
// parts_report.html), kept beside the page and merged into the French
// catalogue once, before any page is rendered.
var frReport = catalog{
	"nav.report":              "Revue annuelle",
	"report.title":            "Revue annuelle conjointe",
	"report.lead":             "Le bilan de l'année que la convention entre l'académie et les départements demande pour chaque composant déployé dans les établissements (articles 4-4 et 4-6) : versions de la politique, disponibilité des passerelles, requêtes bloquées, extractions sur réquisition, incidents et logiciels en service. Il ne contient que des chiffres, aucune donnée personnelle. Sa production est consignée dans le journal d'audit.",
	"report.year":             "Année",
	"report.school.none":      "— (tout un département)",
	"report.departement":      "Département",
	"report.departement.none": "— (un seul établissement)",
	"report.form.hint":        "Choisissez un établissement, ou laissez-le vide et choisissez un département (préfixe de l'UAI : 067 pour le Bas-Rhin, 068 pour le Haut-Rhin).",
	"report.other":            "Un autre rapport",
	"report.submit":           "Établir le rapport",
	"report.document.title":   "Revue annuelle %d — %s",

	"report.kicker":              "Revue annuelle conjointe — académie et collectivités",
	"report.heading":             "Année %d — %s",
	"report.heading.school":      "%s (%s)",
	"report.heading.departement": "Département %s",
	"report.period":              "Période : du %s au %s.",
	"report.period.running":      "L'année est en cours : les chiffres s'arrêtent à la date du rapport.",
	"report.generated":           "Établi le %s par Vigie, à partir des données conservées par le serveur académique de Vigie.",
	"report.privacy":             "Ce rapport ne contient aucune donnée personnelle : ni adresse, ni poste, ni utilisateur, ni site visité ; les extractions sur réquisition y sont comptées, jamais décrites.",
	"report.coverage.full":       "Période couverte : toute la période du rapport (du %s au %s).",
	"report.coverage.partial":    "Période couverte : du %s au %s seulement ; avant, ces données n'étaient pas encore enregistrées ou ont été purgées.",
	"report.coverage.none":       "Période couverte : aucune. Ces données n'étaient pas encore enregistrées pendant cette période.",
	"report.month":               "Mois",
	"report.total":               "Total",
	"report.edge":                "Passerelle",
	"report.edges":               "Passerelles",
	"report.edges.none":          "Aucune passerelle enregistrée.",
	"report.commune":             "Commune",
	"report.lastseen":            "Dernier contact",

	"report.schools":      "Établissements du département",
	"report.schools.none": "Aucun établissement de ce département dans la politique.",

	"report.versions.title":      "Versions de la politique",
	"report.versions.count.one":  "%s version publiée par le RSSI sur la période (la politique est commune à l'académie).",
	"report.versions.count.many": "%s versions publiées par le RSSI sur la période (la politique est commune à l'académie).",
	"report.versions.chart":      "Versions publiées par mois",
	"report.versions.col":        "Versions publiées",
	"report.versions.published":  "Versions publiées",
	"report.versions.rollback":   "(retour au contenu de la version %d)",
	"report.applied.title":       "Application par les passerelles",
	"report.applied.at":          "Appliquée le",
	"report.applied.delay":       "Délai après publication",
	"report.applied.none":        "Aucune application enregistrée sur la période couverte.",
	"report.inforce.title":       "Version en vigueur sur chaque passerelle à la date du rapport",

	"report.availability.title":   "Disponibilité des passerelles",
	"report.availability.rule":    "Une interruption est un silence de plus de %s entre la passerelle d’un collège et le serveur académique (y compris pendant un arrêt du serveur lui-même) ; la passerelle continue de filtrer avec la dernière version reçue.",
	"report.availability.mean":    "Disponibilité moyenne : %s",
	"report.availability.col":     "Disponibilité",
	"report.availability.outages": "Interruptions",
	"report.availability.down":    "Durée totale",
	"report.availability.chart":   "Durée des interruptions par mois (minutes)",
	"report.availability.minutes": "Minutes d'interruption",
	"report.outages.title":        "Interruptions",
	"report.outages.from":         "Début",
	"report.outages.to":           "Fin",
	"report.outages.duration":     "Durée",
	"report.outages.ongoing":      "en cours",
	"report.outages.none":         "Aucune interruption sur la période couverte.",

	"report.blocked.title":       "Requêtes bloquées",
	"report.blocked.unavailable": "Le serveur académique n’a pas d’archive des journaux : aucune requête ne peut être comptée.",
	"report.blocked.retention":   "Les journaux de navigation sont conservés %s puis purgés : les mois plus anciens ne peuvent plus être comptés.",
	"report.blocked.truncated":   "Le décompte s'est arrêté à sa limite : les chiffres sont des minimums.",
	"report.blocked.total.one":   "%s requête bloquée sur la période couverte.",
	"report.blocked.total.many":  "%s requêtes bloquées sur la période couverte.",
	"report.blocked.chart":       "Requêtes bloquées par mois",
	"report.blocked.col":         "Requêtes bloquées",
	"report.blocked.categories":  "Requêtes bloquées par catégorie (%s au total)",
	"report.blocked.matrix":      "Requêtes bloquées par catégorie, mois par mois",
	"report.blocked.hidden":      "Section non communiquée à votre rôle : les techniciens ne voient aucune donnée de navigation, même agrégée.",

	"report.exports.title":            "Extractions sur réquisition",
	"report.exports.lead":             "Comptées dans le journal d'audit ; leur contenu n'apparaît jamais ici.",
	"report.exports.completed.one":    "%s extraction complète",
	"report.exports.completed.many":   "%s extractions complètes",
	"report.exports.interrupted.one":  "%s extraction interrompue ou en échec",
	"report.exports.interrupted.many": "%s extractions interrompues ou en échec",
	"report.exports.denied.one":       "%s tentative refusée",
	"report.exports.denied.many":      "%s tentatives refusées",
	"report.exports.transmitted.one":  "%s extraction transmise à l'AQSSI dans Vigie",
	"report.exports.transmitted.many": "%s extractions transmises à l'AQSSI dans Vigie",
	"report.exports.downloaded.one":   "%s téléchargement par l'AQSSI",
	"report.exports.downloaded.many":  "%s téléchargements par l'AQSSI",
	"report.exports.chart":            "Extractions complètes par mois",
	"report.exports.col":              "Extractions",
	"report.exports.byschool":         "Extractions complètes par établissement",

	"report.incidents.title":   "Bundles refusés et lacunes du journal",
	"report.refused.title":     "Bundles refusés et erreurs d'application",
	"report.refused.kept":      "Version conservée",
	"report.refused.error":     "Motif signalé par la passerelle",
	"report.refused.none":      "Aucun refus enregistré sur la période couverte.",
	"report.gaps.title":        "Lacunes du journal",
	"report.gaps.count.one":    "%s lacune constatée sur la période ;",
	"report.gaps.count.many":   "%s lacunes constatées sur la période ;",
	"report.gaps.missing.one":  "%s enregistrement manquant ;",
	"report.gaps.missing.many": "%s enregistrements manquants ;",
	"report.gaps.open.one":     "%s lacune encore ouverte à la date du rapport.",
	"report.gaps.open.many":    "%s lacunes encore ouvertes à la date du rapport.",
	"report.gaps.stream":       "Flux",
	"report.gaps.range":        "Numéros manquants",

	"report.software.title":    "Logiciels en service",
	"report.software.version":  "Version du logiciel",
	"report.software.which":    "Passerelles concernées",
	"report.software.unknown":  "non communiquée",
	"report.software.changes":  "Mises à jour sur la période",
	"report.software.nochange": "Aucune mise à jour enregistrée sur la période couverte.",

	"report.chart.versions.tip": "%s : %s versions",
	"report.chart.minutes.tip":  "%s : %s minutes",
	"report.chart.exports.tip":  "%s : %s extractions",
	"report.chart.blocked.tip":  "%s : %s requêtes bloquées",

	"report.duration.sec":       "%d s",
	"report.duration.min":       "%d min",
	"report.duration.hours":     "%d h %d min",
	"report.duration.hoursonly": "%d h",
	"report.duration.days":      "%d j %d h",
	"report.duration.daysonly":  "%d j",

	"report.month.1": "janvier", "report.month.2": "février", "report.month.3": "mars", "report.month.4": "avril",
	"report.month.5": "mai", "report.month.6": "juin", "report.month.7": "juillet", "report.month.8": "août",
	"report.month.9": "septembre", "report.month.10": "octobre", "report.month.11": "novembre", "report.month.12": "décembre",
	"report.month.short.1": "janv.", "report.month.short.2": "févr.", "report.month.short.3": "mars", "report.month.short.4": "avr.",
	"report.month.short.5": "mai", "report.month.short.6": "juin", "report.month.short.7": "juil.", "report.month.short.8": "août",
	"report.month.short.9": "sept.", "report.month.short.10": "oct.", "report.month.short.11": "nov.", "report.month.short.12": "déc.",
}

func init() {
	for k, v := range frReport {
		fr[k] = v
	}
	for k, v := range typoCatalog(frReport) {
		current[k] = v
	}
	funcs["list4"] = func(a, b, c, d any) []any { return []any{a, b, c, d} }
	funcs["durationText"] = func(d time.Duration) string { return durationText(d) }
}
