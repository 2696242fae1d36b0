package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"vigie/controlplane/api"
	"vigie/controlplane/store"
)

func (a *admin) diff(args []string) error {
	fs := a.flagsFor("diff", "diff")
	if err := parse(fs, args); err != nil {
		return err
	}
	d, err := a.c.Diff(a.ctx)
	if err != nil {
		return err
	}
	return a.emit(d, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "draft against version %d: %s\n", d.From, d.Summary)
	})
}

func (a *admin) validate(args []string) error {
	fs := a.flagsFor("validate", "validate")
	if err := parse(fs, args); err != nil {
		return err
	}
	v, err := a.c.Validate(a.ctx)
	if err != nil {
		return err
	}
	return a.emit(v, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "draft valid: %d domains, %d URLs, %d categories, %d rejected lines\n", v.Domains, v.URLs, v.Categories, v.Rejected)
		for _, w := range v.Warnings {
			fmt.Fprintln(a.out, "  warning:", w)
		}
	})
}

func (a *admin) publish(args []string) error {
	fs := a.flagsFor("publish", "publish -m MESSAGE [--force]")
	msg := fs.String("m", "", "why this version (required, kept in the history)")
	force := fs.Bool("force", false, "publish even if nothing changed (e.g. to re-sign after a key rotation)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *msg == "" {
		return usageError("-m MESSAGE is required")
	}
	v, err := a.c.Publish(a.ctx, api.PublishRequest{Comment: *msg, Force: *force})
	if err != nil {
		return err
	}
	return a.emit(v, func(*tabwriter.Writer) { printVersion(a.out, v, "published") })
}

// versionDiff is the part of a version's diff the CLI prints.
type versionDiff struct {
	Summary  string `json:"summary"`
	Sections *struct {
		Changed int   `json:"changed"`
		Total   int   `json:"total"`
		Bytes   int64 `json:"bytes"`
	} `json:"sections"`
}

func diffOf(v store.Version) versionDiff {
	var d versionDiff
	json.Unmarshal(v.Diff, &d)
	return d
}

func printVersion(w io.Writer, v store.Version, what string) {
	d := diffOf(v)
	fmt.Fprintf(w, "%s serial %d (%s), %d domains, %d bytes\n  %s\n", what, v.Serial, short(v.Hash), v.Domains, v.Size, d.Summary)
	if s := d.Sections; s != nil {
		fmt.Fprintf(w, "  an up-to-date edge fetches %d of %d sections, %d bytes\n", s.Changed, s.Total, s.Bytes)
	}
}

func (a *admin) rollback(args []string) error {
	fs := a.flagsFor("rollback", "rollback SERIAL [-m MESSAGE]")
	msg := fs.String("m", "", "why")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin rollback SERIAL [-m MESSAGE]")
	}
	v, err := a.c.Rollback(a.ctx, fs.Arg(0), api.PublishRequest{Comment: *msg})
	if err != nil {
		return err
	}
	return a.emit(v, func(*tabwriter.Writer) { printVersion(a.out, v, fmt.Sprintf("rolled back to %d as", v.RollbackOf)) })
}

func (a *admin) versions(args []string) error {
	fs := a.flagsFor("versions", "versions [--limit N]")
	limit := fs.Int("limit", 20, "how many, newest first")
	if err := parse(fs, args); err != nil {
		return err
	}
	vs, err := a.c.Versions(a.ctx, *limit)
	if err != nil {
		return err
	}
	return a.emit(vs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "SERIAL\tDATE\tAUTHOR\tHASH\tCOMMENT\tCHANGES")
		for _, v := range vs {
			comment := v.Comment
			if v.RollbackOf != 0 {
				comment = fmt.Sprintf("[rollback to %d] %s", v.RollbackOf, comment)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Serial, v.Created.Local().Format("2006-01-02 15:04"), v.Author, short(v.Hash), comment, diffOf(v).Summary)
		}
	})
}

func (a *admin) importUT1(args []string) error {
	fs := a.flagsFor("import-ut1", "import-ut1 URL [--md5 URL]")
	md5 := fs.String("md5", "", "URL of the MD5 file (default: MD5SUM.LST beside the tarball)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin import-ut1 https://.../blacklists.tar.gz [--md5 URL]")
	}
	res, err := a.c.ImportUT1(a.ctx, api.ImportRequest{URL: fs.Arg(0), MD5URL: *md5})
	if err != nil {
		return err
	}
	return a.emit(res, func(*tabwriter.Writer) {
		printImport(a.out, &res)
		fmt.Fprintln(a.out, "The draft now uses this tree; publish to send it to the schools.")
	})
}
