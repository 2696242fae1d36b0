package cli

import (
	"flag"
	"fmt"
	"text/tabwriter"

	"vigie/controlplane/api"
)

func (a *admin) users(args []string) error {
	return a.verbs("users", args, a.usersList, a.verbTables()["users"])
}

func (a *admin) usersList(args []string) error {
	fs := a.flagsFor("users", "users [list]")
	if err := parse(fs, args); err != nil {
		return err
	}
	us, err := a.c.Users(a.ctx)
	if err != nil {
		return err
	}
	return a.emit(us, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "LOGIN\tROLE\tUAI/SCOPE\tNAME\tDISABLED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", u.Login, u.Role, u.UAI+u.Scope, u.Name, u.Disabled)
		}
	})
}

const roles = "rssi, chef_etablissement (with --uai), technicien (with an optional --scope), auditeur, aqssi"

func (a *admin) usersAdd(args []string) error {
	fs := a.flagsFor("users add", "users add LOGIN --role ROLE [--uai UAI] [--name NAME]")
	var req api.UserRequest
	fs.StringVar(&req.Role, "role", "", "role: "+roles+" (required)")
	fs.StringVar(&req.UAI, "uai", "", "the school of a chef_etablissement")
	fs.StringVar(&req.Scope, "scope", "", "a technicien's schools: département prefixes (067) and UAIs, comma-separated (default: the whole académie)")
	fs.StringVar(&req.Name, "name", "", "full name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || req.Role == "" {
		return usageError("usage: vigie admin users add LOGIN --role ROLE [--uai UAI] [--name NAME]")
	}
	req.Login = fs.Arg(0)
	u, err := a.c.CreateUser(a.ctx, req)
	if err != nil {
		return err
	}
	return a.emit(u, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "account %s (%s) created.\npassword: %s\nGive it to its owner by a safe channel: it is shown only once.\n", u.User.Login, u.User.Role, u.Password)
	})
}

func (a *admin) usersSet(args []string) error {
	fs := a.flagsFor("users set", "users set LOGIN [--role ROLE] [--uai UAI] [--name NAME] [--disable | --enable] [--new-password]")
	role := fs.String("role", "", "new role: "+roles)
	uai := fs.String("uai", "", "new school (chef_etablissement)")
	scope := fs.String("scope", "", "new scope of a technicien: département prefixes (067) and UAIs, comma-separated; \"\" for the whole académie")
	name := fs.String("name", "", "new full name")
	disable := fs.Bool("disable", false, "disable the account")
	enable := fs.Bool("enable", false, "enable the account")
	newPass := fs.Bool("new-password", false, "generate a new password (shown once)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (*disable && *enable) {
		return usageError("usage: vigie admin users set LOGIN [--role ROLE] [--uai UAI] [--name NAME] [--disable | --enable] [--new-password]")
	}
	var p api.UserPatch
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "role":
			p.Role = role
		case "uai":
			p.UAI = uai
		case "scope":
			p.Scope = scope
		case "name":
			p.Name = name
		}
	})
	if *disable || *enable {
		p.Disabled = disable
	}
	gen := "generate"
	if *newPass {
		p.Password = &gen
	}
	out, err := a.c.PatchUser(a.ctx, fs.Arg(0), p)
	if err != nil {
		return err
	}
	return a.emit(out, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "account %s updated\n", fs.Arg(0))
		if out.Password != "" {
			fmt.Fprintf(a.out, "new password: %s (shown only once)\n", out.Password)
		}
	})
}

func (a *admin) tokens(args []string) error {
	return a.verbs("tokens", args, a.tokensList, a.verbTables()["tokens"])
}

func (a *admin) tokensList(args []string) error {
	fs := a.flagsFor("tokens", "tokens [list]")
	if err := parse(fs, args); err != nil {
		return err
	}
	ts, err := a.c.Tokens(a.ctx)
	if err != nil {
		return err
	}
	return a.emit(ts, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tEXPIRES")
		for _, t := range ts {
			exp := "never"
			if !t.ExpiresAt.IsZero() {
				exp = t.ExpiresAt.Local().Format("2006-01-02")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Local().Format("2006-01-02 15:04"), ago(t.LastUsed), exp)
		}
	})
}

func (a *admin) tokensCreate(args []string) error {
	fs := a.flagsFor("tokens create", "tokens create NAME [--days N]")
	days := fs.Int("days", 0, "lifetime in days (0: never expires)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin tokens create NAME [--days N]")
	}
	t, err := a.c.CreateToken(a.ctx, api.TokenRequest{Name: fs.Arg(0), ExpiresInDays: *days})
	if err != nil {
		return err
	}
	return a.emit(t, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "token %q (id %d): %s\nIt is shown only once.\n", t.Info.Name, t.Info.ID, t.Token)
	})
}

func (a *admin) tokensRevoke(args []string) error {
	fs := a.flagsFor("tokens revoke", "tokens revoke ID")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin tokens revoke ID")
	}
	if err := a.c.RevokeToken(a.ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "token %s revoked\n", fs.Arg(0))
	return nil
}
