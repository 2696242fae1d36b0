package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"vigie/rules/policy"
)

// The states of an IP plan proposal.
const (
	ProposalPending   = "pending"
	ProposalValidated = "validated"
	ProposalRefused   = "refused"
)

// IPProposal is a change to one school's IP plan (its zones: prefixes and
// the profile each gets) that a technicien of the Collectivité proposes
// and the académie's RSSI validates or refuses: the convention's plan
// "validé conjointement". Validation copies Zones into the draft.
type IPProposal struct {
	ID  int64  `json:"id"`
	UAI string `json:"uai"`
	// Zones is the school's whole plan as proposed.
	Zones []policy.Zone `json:"zones"`
	// Base is the plan the proposal replaces: the draft's when it was
	// made, then, once validated, the one validation replaced.
	Base       []policy.Zone `json:"base"`
	Comment    string        `json:"comment"`
	ProposedBy string        `json:"proposed_by"`
	ProposedAt time.Time     `json:"proposed_at"`
	// Status is pending, validated or refused.
	Status    string    `json:"status"`
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// Reason is the RSSI's word on the decision (required for a refusal:
	// the technicien reads it).
	Reason string `json:"reason,omitempty"`
	// DraftRevision is the draft revision the validation produced.
	DraftRevision int64 `json:"draft_revision,omitempty"`
}

// IPProposalFilter narrows IPProposals; zero values filter nothing.
type IPProposalFilter struct {
	Status string
	UAI    string
	// Scope keeps the schools whose UAI starts with one of these (a
	// technicien's département prefixes and whole UAIs).
	Scope []string
}

const ipProposalCols = `id, uai, zones, base, comment, proposed_by, proposed_at, status, decided_by, decided_at, reason, draft_revision`

func scanIPProposal(sc interface{ Scan(...any) error }) (IPProposal, error) {
	var p IPProposal
	var zones, base string
	var at, decided int64
	if err := sc.Scan(&p.ID, &p.UAI, &zones, &base, &p.Comment, &p.ProposedBy, &at, &p.Status, &p.DecidedBy, &decided,
		&p.Reason, &p.DraftRevision); err != nil {
		return p, err
	}
	p.ProposedAt, p.DecidedAt = fromNanos(at), fromNanos(decided)
	if err := json.Unmarshal([]byte(zones), &p.Zones); err != nil {
		return p, fmt.Errorf("proposal %d: stored zones are not valid JSON: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(base), &p.Base); err != nil {
		return p, fmt.Errorf("proposal %d: stored base is not valid JSON: %w", p.ID, err)
	}
	return p, nil
}

func (r reader) IPProposals(ctx context.Context, f IPProposalFilter, p Page) ([]IPProposal, error) {
	before := int64(1<<63 - 1)
	if p.After != "" {
		n, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("store: IP proposals: bad page key %q", p.After)
		}
		before = n
	}
	q := `SELECT ` + ipProposalCols + ` FROM ip_proposals WHERE id < ? AND (? = '' OR status = ?) AND (? = '' OR uai = ?)`
	args := []any{before, f.Status, f.Status, f.UAI, f.UAI}
	if len(f.Scope) > 0 {
		// substr with the prefix's length: no LIKE, so that no character
		// of a prefix is ever a wildcard.
		var or []string
		for _, s := range f.Scope {
			or = append(or, `substr(uai, 1, ?) = ?`)
			args = append(args, len(s), s)
		}
		q += ` AND (` + strings.Join(or, ` OR `) + `)`
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(p, MaxPage+1))
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: IP proposals: %w", err)
	}
	defer rows.Close()
	var out []IPProposal
	for rows.Next() {
		ip, err := scanIPProposal(rows)
		if err != nil {
			return nil, fmt.Errorf("store: IP proposals: %w", err)
		}
		out = append(out, ip)
	}
	return out, rows.Err()
}

func (r reader) IPProposal(ctx context.Context, id int64) (IPProposal, error) {
	p, err := scanIPProposal(r.db.QueryRowContext(ctx, `SELECT `+ipProposalCols+` FROM ip_proposals WHERE id = ?`, id))
	if err != nil {
		return p, notFound(fmt.Sprintf("IP plan proposal %d", id), err)
	}
	return p, nil
}

// zonesJSON encodes a plan, an empty one as [] (never null).
func zonesJSON(zs []policy.Zone) (string, error) {
	if zs == nil {
		zs = []policy.Zone{}
	}
	b, err := json.Marshal(zs)
	return string(b), err
}

func (w *writer) CreateIPProposal(ctx context.Context, p IPProposal) (int64, error) {
	zones, err := zonesJSON(p.Zones)
	if err != nil {
		return 0, fmt.Errorf("store: IP proposal: %w", err)
	}
	base, err := zonesJSON(p.Base)
	if err != nil {
		return 0, fmt.Errorf("store: IP proposal: %w", err)
	}
	if p.Status == "" {
		p.Status = ProposalPending
	}
	var id int64
	err = w.db.QueryRowContext(ctx, `INSERT INTO ip_proposals (uai, zones, base, comment, proposed_by, proposed_at, status)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, p.UAI, zones, base, p.Comment, p.ProposedBy, nanos(p.ProposedAt), p.Status).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: create IP proposal: %w", err)
	}
	return id, nil
}

func (w *writer) DecideIPProposal(ctx context.Context, p IPProposal) error {
	if p.Status != ProposalValidated && p.Status != ProposalRefused {
		return fmt.Errorf("store: IP proposal %d: a decision is validated or refused, not %q", p.ID, p.Status)
	}
	base, err := zonesJSON(p.Base)
	if err != nil {
		return fmt.Errorf("store: IP proposal %d: %w", p.ID, err)
	}
	res, err := w.db.ExecContext(ctx, `UPDATE ip_proposals SET status = ?, decided_by = ?, decided_at = ?, reason = ?, base = ?, draft_revision = ?
		WHERE id = ? AND status = ?`, p.Status, p.DecidedBy, nanos(p.DecidedAt), p.Reason, base, p.DraftRevision, p.ID, ProposalPending)
	if err != nil {
		return fmt.Errorf("store: IP proposal %d: %w", p.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	// Nothing changed: tell a decided proposal from an unknown one.
	var status string
	err = w.db.QueryRowContext(ctx, `SELECT status FROM ip_proposals WHERE id = ?`, p.ID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: IP plan proposal %d: %w", p.ID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: IP proposal %d: %w", p.ID, err)
	}
	return fmt.Errorf("store: IP plan proposal %d is already %s: %w", p.ID, status, ErrConflict)
}
