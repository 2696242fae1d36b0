// Package catlabel holds the curated French names and descriptions of the
// UT1 categories, as the console, the charts and the pupils' block page
// show them.
//
// UT1's global_usage names only some categories in French, and with
// typos ("Agréssif", "reseaux sociaux", "Celebrite") or raw identifiers
// (ai, doh, vpn); it still credits the ARJEL, the ANJ since 2020. The
// lists stay UT1's; only what a person reads is curated here. A category
// of the académie's own policy keeps the name its author gave it.
package catlabel

// Label is a category's French name and one-sentence description.
type Label struct {
	Name, Desc string
}

// French returns the curated label of a UT1 category, by its directory
// name (or one of UT1's aliases).
func French(id string) (Label, bool) {
	l, ok := labels[id]
	return l, ok
}

// Name returns the curated French name of category id, else fallback
// (the name the policy or the list gives), else id itself.
func Name(id, fallback string) string {
	if l, ok := labels[id]; ok {
		return l.Name
	}
	if fallback != "" {
		return fallback
	}
	return id
}

// Desc returns the curated French description of category id, else
// fallback.
func Desc(id, fallback string) string {
	if l, ok := labels[id]; ok {
		return l.Desc
	}
	return fallback
}

// IDs lists the categories with a curated label (tests check that every
// category of the UT1 tree has one).
func IDs() []string {
	out := make([]string, 0, len(labels))
	for k := range labels {
		out = append(out, k)
	}
	return out
}

var labels = map[string]Label{
	"adult":                    {"Adulte (X)", "Sites pour adultes, de l’érotisme à la pornographie."},
	"porn":                     {"Adulte (X)", "Sites pour adultes, de l’érotisme à la pornographie."},
	"agressif":                 {"Haine et violence", "Sites racistes, antisémites ou incitant à la haine."},
	"aggressive":               {"Haine et violence", "Sites racistes, antisémites ou incitant à la haine."},
	"ai":                       {"Intelligence artificielle", "Services d’intelligence artificielle (agents conversationnels, générateurs)."},
	"arjel":                    {"Jeux d’argent agréés (ANJ)", "Sites de paris en ligne agréés par l’Autorité nationale des jeux (ANJ, anciennement ARJEL)."},
	"associations_religieuses": {"Associations religieuses", "Sites d’associations religieuses."},
	"astrology":                {"Astrologie", "Astrologie et voyance."},
	"audio-video":              {"Audio et vidéo", "Sites de diffusion audio et vidéo."},
	"bank":                     {"Banques", "Banque en ligne."},
	"bitcoin":                  {"Cryptomonnaies", "Sites de bitcoin et autres cryptomonnaies."},
	"blog":                     {"Blogs", "Sites hébergeant des blogs."},
	"celebrity":                {"Célébrités", "Actualité des célébrités («\u00a0people\u00a0»)."},
	"chat":                     {"Messagerie instantanée", "Sites de discussion en ligne (tchat)."},
	"child":                    {"Enfants", "Sites adaptés aux enfants."},
	"cleaning":                 {"Nettoyage et antivirus", "Sites pour désinfecter et mettre à jour les ordinateurs."},
	"cooking":                  {"Cuisine", "Sites de cuisine."},
	"cryptojacking":            {"Minage clandestin", "Sites qui font miner des cryptomonnaies à l’insu du visiteur."},
	"dangerous_material":       {"Fabrications dangereuses", "Sites décrivant la fabrication d’objets dangereux (explosifs, poisons…)."},
	"dating":                   {"Rencontres", "Sites de rencontres."},
	"ddos":                     {"Attaques par déni de service", "Services d’attaque par déni de service."},
	"dialer":                   {"Numéroteurs surtaxés", "Sites de numéroteurs (appels surtaxés)."},
	"doh":                      {"DNS chiffré (DoH)", "Serveurs DNS sur HTTPS, qui permettent de contourner le filtrage."},
	"download":                 {"Téléchargement de logiciels", "Sites de téléchargement de logiciels."},
	"drogue":                   {"Drogues", "Sites sur les drogues."},
	"drugs":                    {"Drogues", "Sites sur les drogues."},
	"dynamic-dns":              {"DNS dynamique", "Services de noms de domaine dynamiques, souvent utilisés pour contourner le filtrage."},
	"educational_games":        {"Jeux éducatifs", "Sites de jeux éducatifs."},
	"examen_pix":               {"Examen PIX (autorisés)", "Sites autorisés pendant l’examen PIX\u202f; à n’utiliser que pour cet examen."},
	"exceptions_liste_bu":      {"Exceptions des bibliothèques universitaires", "Exceptions de la liste des bibliothèques universitaires."},
	"fakenews":                 {"Désinformation", "Sites diffusant de fausses informations."},
	"filehosting":              {"Hébergement de fichiers", "Sites d’hébergement et de partage de fichiers (vidéos, images, sons)."},
	"financial":                {"Finance", "Informations financières, bourse."},
	"forums":                   {"Forums", "Forums de discussion."},
	"gambling":                 {"Jeux d’argent", "Casinos et jeux d’argent en ligne."},
	"games":                    {"Jeux", "Jeux en ligne et distribution de jeux."},
	"hacking":                  {"Piratage informatique", "Sites de piratage et d’attaques informatiques."},
	"jobsearch":                {"Emploi", "Recherche d’emploi."},
	"lingerie":                 {"Lingerie", "Sites de lingerie."},
	"liste_blanche":            {"Liste blanche UT1", "Sites que l’université Toulouse Capitole autorise toujours."},
	"liste_bu":                 {"Bibliothèques universitaires", "Sites éducatifs retenus par les bibliothèques universitaires."},
	"mail":                     {"Messagerie web", "Messageries en ligne (webmail)."},
	"webmail":                  {"Messagerie web", "Messageries en ligne (webmail)."},
	"malware":                  {"Logiciels malveillants", "Sites qui diffusent des logiciels malveillants."},
	"manga":                    {"Mangas et bande dessinée", "L’univers des mangas et de la bande dessinée."},
	"marketingware":            {"Marketing agressif", "Sites de marketing intrusif."},
	"mixed_adult":              {"Contenus adultes partiels", "Sites dont une partie des contenus est réservée aux adultes."},
	"mobile-phone":             {"Téléphonie mobile", "Sites pour téléphones mobiles (sonneries…)."},
	"phishing":                 {"Hameçonnage", "Sites d’hameçonnage et de fraude bancaire."},
	"press":                    {"Presse", "Sites de presse d’information."},
	"publicite":                {"Publicité", "Régies publicitaires."},
	"ads":                      {"Publicité", "Régies publicitaires."},
	"radio":                    {"Radio en ligne", "Radios sur Internet."},
	"reaffected":               {"Domaines réaffectés", "Sites qui ont changé de propriétaire, et donc de contenu."},
	"redirector":               {"Contournement du filtrage", "Sites qui permettent de contourner le filtrage (proxys, traducteurs détournés)."},
	"proxy":                    {"Contournement du filtrage", "Sites qui permettent de contourner le filtrage (proxys, traducteurs détournés)."},
	"remote-control":           {"Prise de contrôle à distance", "Logiciels de prise de contrôle à distance."},
	"residential-proxies":      {"Proxys résidentiels", "Réseaux de proxys résidentiels."},
	"sect":                     {"Sectes", "Mouvements sectaires."},
	"sexual_education":         {"Éducation sexuelle", "Éducation sexuelle\u202f; ces sites peuvent être pris à tort pour des sites pour adultes."},
	"shopping":                 {"Achats en ligne", "Sites de vente en ligne."},
	"shortener":                {"Raccourcisseurs d’adresses", "Services de raccourcissement d’adresses."},
	"social_networks":          {"Réseaux sociaux", "Réseaux sociaux."},
	"special":                  {"Spéciale UT1", "Liste technique de l’université Toulouse Capitole."},
	"sports":                   {"Sports", "Sites de sport."},
	"stalkerware":              {"Logiciels espions", "Outils d’espionnage de particuliers."},
	"strict_redirector":        {"Contournement du filtrage (strict)", "Comme «\u00a0Contournement du filtrage\u00a0», avec les moteurs de recherche classiques."},
	"strong_redirector":        {"Contournement du filtrage (renforcé)", "Comme la liste stricte\u202f; pour les moteurs de recherche, seuls certains termes sont bloqués."},
	"translation":              {"Traduction", "Sites de traduction."},
	"tricheur":                 {"Triche aux examens", "Sites qui expliquent comment tricher aux examens."},
	"tricheur_pix":             {"Triche à l’examen PIX", "Sites bloqués pendant l’examen PIX."},
	"update":                   {"Mises à jour", "Mises à jour des systèmes et des logiciels."},
	"violence":                 {"Violence", "Sites violents."},
	"vpn":                      {"VPN", "Réseaux privés virtuels, qui permettent de contourner le filtrage."},
	"warez":                    {"Logiciels et vidéos piratés", "Sites distribuant des logiciels ou des vidéos piratés."},
	"webhosting":               {"Hébergement web", "Hébergeurs de sites web."},
}
