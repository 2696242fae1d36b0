package controlplane

import "vigie/rules/policy"

// The UT1 categories a collège blocks for minors, after the circulaire
// n° 2004-035 (protection of pupils from illicit or harmful content):
// pornography and adult content, hatred and violence, drugs, gambling,
// dating, fraud and malicious software, sects, cheating, and the tools
// that step around the filter. Every one is a "black" category of UT1's
// global_usage; the black categories left out (social networks, games,
// webmail, press...) are pedagogical choices, not protection, and the
// RSSI adds them per profile.
var minorsBlock = []string{
	"adult", "mixed_adult", "lingerie", // pornography and adult content
	"agressif",           // hatred, racism, violence (UT1 aliases it as violence and aggressive)
	"dangerous_material", // weapons, explosives
	"drogue",             // drugs
	"gambling", "arjel",  // gambling
	"dating",                                                                           // dating
	"phishing", "malware", "cryptojacking", "ddos", "hacking", "stalkerware", "dialer", // fraud and malicious software
	"sect",                     // sects
	"warez",                    // piracy
	"tricheur", "tricheur_pix", // cheating at exams
	"redirector", "vpn", "doh", "residential-proxies", // ways around the filter
	academieBlock,
}

// staffBlock protects the staff's machines (which hold pupils' data)
// without judging what adults read.
var staffBlock = []string{"adult", "agressif", "dangerous_material", "phishing", "malware", "cryptojacking", "ddos", "stalkerware", academieBlock}

// The académie's own categories: what the RSSI blocks or allows on top of
// UT1 ("vigie admin lists add academie_bloque example.org").
const (
	academieBlock = "academie_bloque"
	academieAllow = "academie_autorise"
)

// FirstPolicy is the draft of a new control plane: it protects on day
// one, once UT1 is imported. It names the profiles of the usual IP plan
// (eleves, personnels, invites, serveurs), the académie's own block and
// allow lists, and a default-deny egress where pupils and guests get web,
// DNS and time only. Schools and their zones (pedagogique, administratif,
// wifi, serveurs) are added by the RSSI; the matrix already names them.
func FirstPolicy(academie string) *policy.Policy {
	minors := func(id, name string) policy.Profile {
		return policy.Profile{ID: id, Name: name, Block: minorsBlock, Allow: []string{"liste_blanche", academieAllow},
			SafeSearch: true, YouTube: "strict", HTTPS: "sni", NoSNI: "refuse", BlockAnswer: "blockpage"}
	}
	web := []string{"web", "dns", "ntp"}
	return &policy.Policy{
		Version:  1,
		Academie: academie,
		Categories: []policy.Category{
			{ID: academieBlock, NameFR: "Bloqué par l’académie", NameEN: "Blocked by the académie",
				DescFR: "Sites bloqués par décision du RSSI de l’académie.", Usage: "black"},
			{ID: academieAllow, NameFR: "Autorisé par l’académie", NameEN: "Allowed by the académie",
				DescFR: "Sites pédagogiques autorisés même s’ils figurent dans une liste de blocage.", Usage: "white"},
		},
		Lists: []policy.List{
			{ID: "academie-bloque", Category: academieBlock, Comment: "Décisions du RSSI"},
			{ID: "academie-autorise", Category: academieAllow, Comment: "Ressources pédagogiques"},
		},
		Profiles: []policy.Profile{
			minors("eleves", "Élèves"),
			{ID: "personnels", Name: "Personnels", Block: staffBlock, Allow: []string{"liste_blanche", academieAllow},
				SafeSearch: true, YouTube: "moderate", HTTPS: "sni", BlockAnswer: "blockpage"},
			minors("invites", "Invités"),
			{ID: "serveurs", Name: "Serveurs (non filtré)", Unfiltered: true},
		},
		DefaultProfile: "eleves",
		Firewall: policy.Firewall{
			Internet: []policy.Flow{
				{From: "pedagogique", Services: web, Comment: "Élèves, web et DNS filtrés, heure"},
				{From: "wifi", Services: web, Comment: "Invités, web et DNS filtrés, heure"},
				{From: "administratif", Services: web},
				{From: "serveurs", Services: web, Comment: "Mises à jour"},
			},
			Management: []policy.Flow{
				{From: "administratif", Proto: "tcp", Ports: []string{"22"}, Comment: "SSH d'administration"},
			},
		},
	}
}
