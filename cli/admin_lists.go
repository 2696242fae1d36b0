package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"vigie/controlplane/api"
	"vigie/controlplane/store"
)

// pickList finds the custom list of a category (and school), creating it
// when add is set and there is none.
func (a *admin) pickList(category, school, explicit string, add bool) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	lists, err := a.c.Lists(a.ctx)
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
	if _, err := a.c.CreateList(a.ctx, api.ListCreate{ID: id, Category: category, School: school}); err != nil {
		return "", err
	}
	fmt.Fprintf(a.err, "created list %s (category %s%s)\n", id, category, forSchool(school))
	return id, nil
}

func forSchool(uai string) string {
	if uai == "" {
		return ""
	}
	return ", school " + uai
}

func (a *admin) lists(args []string) error {
	return a.verbs("lists", args, a.listsVerb("show"), a.verbTables()["lists"])
}

// listsVerb is "vigie admin lists VERB": show, add and remove share
// their options.
func (a *admin) listsVerb(verb string) func([]string) error {
	return func(args []string) error { return a.listsRun(verb, args) }
}

func (a *admin) listsRun(verb string, args []string) error {
	usage := map[string]string{
		"show":   "lists show [CATEGORY] [--school UAI] [--list ID]",
		"add":    "lists add CATEGORY DOMAIN... [-m COMMENT] [--school UAI] [--list ID]",
		"remove": "lists remove CATEGORY DOMAIN... [--school UAI] [--list ID]",
	}[verb]
	fs := a.flagsFor("lists "+verb, usage)
	comment := fs.String("m", "", "comment kept with the entries")
	school := fs.String("school", "", "UAI of the school the list applies to (per-school exception or block)")
	list := fs.String("list", "", "list identifier, when a category has several")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch verb {
	case "show":
		if fs.NArg() == 0 {
			lists, err := a.c.Lists(a.ctx)
			if err != nil {
				return err
			}
			return a.emit(lists, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "LIST\tCATEGORY\tSCHOOL\tENTRIES\tCOMMENT")
				for _, l := range lists {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.ID, l.Category, l.School, l.Entries, l.Comment)
				}
			})
		}
		id, err := a.pickList(fs.Arg(0), *school, *list, false)
		if err != nil {
			return err
		}
		var all []store.Entry
		if err := a.c.EachEntry(a.ctx, id, func(items []store.Entry) error { all = append(all, items...); return nil }); err != nil {
			return err
		}
		return a.emit(all, func(tw *tabwriter.Writer) {
			for _, e := range all {
				fmt.Fprintf(a.out, "%s\t%s\t%s\t%s\n", e.Kind, e.Value, e.Author, e.Comment)
			}
		})
	default:
		if fs.NArg() < 2 {
			return usageError("usage: vigie admin %s", usage)
		}
		id, err := a.pickList(fs.Arg(0), *school, *list, verb == "add")
		if err != nil {
			return err
		}
		ch := api.EntriesChange{Domains: fs.Args()[1:], Comment: *comment}
		var res api.EntriesResult
		if verb == "add" {
			res, err = a.c.AddEntries(a.ctx, id, ch)
		} else {
			res, err = a.c.RemoveEntries(a.ctx, id, ch)
		}
		if err != nil {
			return err
		}
		word := map[string]string{"add": "added to", "remove": "removed from"}[verb]
		return a.emit(res, func(*tabwriter.Writer) {
			fmt.Fprintf(a.out, "%d domain(s) %s %s (draft: publish to apply)\n", res.Changed, word, id)
		})
	}
}

func (a *admin) categories(args []string) error {
	fs := a.flagsFor("categories", "categories")
	if err := parse(fs, args); err != nil {
		return err
	}
	var page struct {
		Items []struct {
			ID     string `json:"id"`
			NameFR string `json:"name_fr"`
			Usage  string `json:"usage"`
		} `json:"items"`
	}
	if err := a.c.Categories(a.ctx, &page); err != nil {
		return err
	}
	return a.emit(page.Items, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "CATEGORY\tUSAGE\tNAME")
		for _, c := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Usage, c.NameFR)
		}
	})
}
