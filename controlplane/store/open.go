package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Options opens a store from its configured address (see Open).
type Options struct {
	// DefaultSQLite is the SQLite file used when the address is empty.
	DefaultSQLite string
	// Readers sizes SQLite's reader pool or PostgreSQL's connection pool.
	Readers int
	// Schema is PostgreSQL's schema (default "vigie").
	Schema string
	// PasswordFile holds PostgreSQL's password (first line); without it,
	// libpq's PGPASSWORD or password file apply.
	PasswordFile string
	Log          *slog.Logger
}

// Backend says which engine an address names: "sqlite" or "postgres".
func Backend(addr string) string {
	if strings.HasPrefix(addr, "postgres://") || strings.HasPrefix(addr, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}

// CheckAddress validates a configured database address without opening
// it: empty, sqlite:PATH, or a postgres:// URL carrying no password (a
// password in a configuration file ends up in backups and support
// tickets; it belongs in a file of its own or the libpq environment).
func CheckAddress(addr string) error {
	switch {
	case addr == "":
		return nil
	case strings.HasPrefix(addr, "sqlite:"):
		if strings.TrimPrefix(addr, "sqlite:") == "" {
			return fmt.Errorf("sqlite: needs a file path (sqlite:/var/lib/vigie/vigie.db)")
		}
		return nil
	case Backend(addr) == "postgres":
		u, err := url.Parse(addr)
		if err != nil {
			// url.Error repeats the URL, password included: say less.
			return fmt.Errorf("not a valid postgres:// URL")
		}
		if _, ok := u.User.Password(); ok {
			return fmt.Errorf("the password must not be written in the URL: use database_password_file or PGPASSWORD / ~/.pgpass")
		}
		if u.Query().Has("password") {
			return fmt.Errorf("the password must not be written in the URL (password=): use database_password_file or PGPASSWORD / ~/.pgpass")
		}
		return nil
	}
	return fmt.Errorf("%q: want sqlite:PATH or a postgres:// URL", addr)
}

// Open opens the store an address names: empty for opt.DefaultSQLite,
// sqlite:PATH, or a postgres:// URL.
func Open(ctx context.Context, addr string, opt Options) (Store, error) {
	if err := CheckAddress(addr); err != nil {
		return nil, fmt.Errorf("store: database: %w", err)
	}
	switch {
	case addr == "":
		return OpenSQLite(opt.DefaultSQLite, opt.Readers)
	case strings.HasPrefix(addr, "sqlite:"):
		return OpenSQLite(filepath.Clean(strings.TrimPrefix(addr, "sqlite:")), opt.Readers)
	}
	c := PostgresConfig{Schema: opt.Schema, MaxConns: opt.Readers, Log: opt.Log}
	if opt.PasswordFile != "" {
		b, err := os.ReadFile(opt.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("store: database password: %w", err)
		}
		c.Password, _, _ = strings.Cut(string(b), "\n")
		c.Password = strings.TrimRight(c.Password, "\r")
	}
	return OpenPostgres(ctx, addr, c)
}
