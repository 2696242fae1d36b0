package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"vigie/controlplane/apiclient"
	"vigie/rules/policy"
)

func (a *admin) schools(args []string) error {
	return a.verbs("schools", args, a.schoolsList, a.verbTables()["schools"])
}

func (a *admin) schoolsList(args []string) error {
	fs := a.flagsFor("schools", "schools [list]")
	if err := parse(fs, args); err != nil {
		return err
	}
	ss, err := a.c.Schools(a.ctx)
	if err != nil {
		return err
	}
	return a.emit(ss, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "UAI\tNAME\tCOMMUNE\tZONES")
		for _, s := range ss {
			var zs []string
			for _, z := range s.Zones {
				zs = append(zs, z.Name+"→"+z.Profile)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.UAI, s.Name, s.Commune, strings.Join(zs, " "))
		}
	})
}

func (a *admin) oneUAI(fs interface{ NArg() int }, usage string) error {
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin %s", usage)
	}
	return nil
}

func (a *admin) printSchool(s policy.School) error {
	return a.emit(s, func(tw *tabwriter.Writer) {
		fmt.Fprintf(a.out, "%s  %s", s.UAI, s.Name)
		if s.Commune != "" {
			fmt.Fprintf(a.out, " (%s)", s.Commune)
		}
		fmt.Fprintln(a.out)
		fmt.Fprintln(tw, "ZONE\tPROFILE\tCIDRS\tINTERFACES")
		for _, z := range s.Zones {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", z.Name, z.Profile, strings.Join(z.CIDRs, ","), strings.Join(z.Interfaces, ","))
		}
	})
}

func (a *admin) schoolsShow(args []string) error {
	const usage = "schools show UAI"
	fs := a.flagsFor("schools show", usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.oneUAI(fs, usage); err != nil {
		return err
	}
	s, err := a.c.School(a.ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	return a.printSchool(s)
}

// existingSchool reads a school, or starts a new one when there is none.
func (a *admin) existingSchool(uai string) (policy.School, error) {
	s, err := a.c.School(a.ctx, uai)
	var p *apiclient.Problem
	if errors.As(err, &p) && p.Status == 404 {
		return policy.School{UAI: uai}, nil
	}
	return s, err
}

func (a *admin) schoolsSet(args []string) error {
	const usage = "schools set UAI --name NAME [--commune C] [--departement D] [--contact EMAIL]"
	fs := a.flagsFor("schools set", usage)
	name := fs.String("name", "", "the school's name (required for a new school)")
	commune := fs.String("commune", "", "commune")
	dep := fs.String("departement", "", "département number")
	contact := fs.String("contact", "", "contact address")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.oneUAI(fs, usage); err != nil {
		return err
	}
	s, err := a.existingSchool(fs.Arg(0))
	if err != nil {
		return err
	}
	for _, f := range []struct{ v, dst *string }{{name, &s.Name}, {commune, &s.Commune}, {dep, &s.Departement}, {contact, &s.Contact}} {
		if *f.v != "" {
			*f.dst = *f.v
		}
	}
	if s.Zones == nil {
		s.Zones = []policy.Zone{}
	}
	out, err := a.c.PutSchool(a.ctx, s)
	if err != nil {
		return err
	}
	return a.printSchool(out)
}

func (a *admin) schoolsZone(args []string) error {
	const usage = "schools zone UAI ZONE --cidr PREFIX [--cidr PREFIX...] --profile PROFILE [--iface IF...]"
	fs := a.flagsFor("schools zone", usage)
	var cidrs, ifaces repeated
	fs.Var(&cidrs, "cidr", "an address prefix of the zone (repeat, or comma-separated)")
	fs.Var(&ifaces, "iface", "an interface of the edge that carries the zone (repeat)")
	profile := fs.String("profile", "", "the profile the zone gets (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 || len(cidrs) == 0 || *profile == "" {
		return usageError("usage: vigie admin %s", usage)
	}
	s, err := a.existingSchool(fs.Arg(0))
	if err != nil {
		return err
	}
	if s.Name == "" {
		return fmt.Errorf("school %s does not exist: create it first with \"vigie admin schools set %s --name NAME\"", s.UAI, s.UAI)
	}
	z := policy.Zone{Name: fs.Arg(1), CIDRs: cidrs, Interfaces: ifaces, Profile: *profile}
	if i := slices.IndexFunc(s.Zones, func(o policy.Zone) bool { return o.Name == z.Name }); i >= 0 {
		s.Zones[i] = z
	} else {
		s.Zones = append(s.Zones, z)
	}
	out, err := a.c.PutSchool(a.ctx, s)
	if err != nil {
		return err
	}
	return a.printSchool(out)
}

func (a *admin) schoolsZoneRemove(args []string) error {
	const usage = "schools zone-remove UAI ZONE"
	fs := a.flagsFor("schools zone-remove", usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError("usage: vigie admin %s", usage)
	}
	s, err := a.c.School(a.ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	n := len(s.Zones)
	s.Zones = slices.DeleteFunc(s.Zones, func(z policy.Zone) bool { return z.Name == fs.Arg(1) })
	if len(s.Zones) == n {
		return fmt.Errorf("school %s has no zone %q", s.UAI, fs.Arg(1))
	}
	out, err := a.c.PutSchool(a.ctx, s)
	if err != nil {
		return err
	}
	return a.printSchool(out)
}

func (a *admin) schoolsRemove(args []string) error {
	const usage = "schools remove UAI"
	fs := a.flagsFor("schools remove", usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.oneUAI(fs, usage); err != nil {
		return err
	}
	if err := a.c.DeleteSchool(a.ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "school %s removed from the draft (publish to apply)\n", fs.Arg(0))
	return nil
}

func (a *admin) schoolsStatus(args []string) error {
	const usage = "schools status UAI"
	fs := a.flagsFor("schools status", usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.oneUAI(fs, usage); err != nil {
		return err
	}
	st, err := a.c.SchoolStatus(a.ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	return a.emit(st, func(tw *tabwriter.Writer) {
		fmt.Fprintf(a.out, "%s %s: published serial %d, up to date: %s\n", st.UAI, st.Name, st.PublishedSerial, yesNo(st.UpToDate))
		fmt.Fprintln(tw, "EDGE\tAPPLIED\tSTATE\tLAST SEEN\tLAST ERROR")
		for _, e := range st.Edges {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.ID, e.AppliedSerial, e.State, ago(e.LastSeen), e.LastError)
		}
	})
}
