package store

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"vigie/controlplane/store/pgtest"
	"vigie/rules/policy"
)

func TestIPProposals(t *testing.T) { eachBackend(t, testIPProposals) }

// testIPProposals: proposals round-trip with their plans, list newest
// first by state, school and scope prefix, page, and are decided once.
func testIPProposals(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	plan := []policy.Zone{
		{Name: "pedagogique", CIDRs: []string{"10.67.1.0/24", "fd00:67::/64"}, Profile: "eleves"},
		{Name: "wifi", CIDRs: []string{"10.67.2.0/24"}, Interfaces: []string{"wlan0"}, Profile: "invites"},
	}
	base := []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.67.1.0/24"}, Profile: "eleves"}}
	var ids []int64
	err := s.Update(ctx, func(tx Tx) error {
		for i, uai := range []string{"0671234X", "0681234A", "0672222B"} {
			id, err := tx.CreateIPProposal(ctx, IPProposal{UAI: uai, Zones: plan, Base: base, Comment: "Wifi du CDI, é’ " + strconv.Itoa(i),
				ProposedBy: "tech67", ProposedAt: t0.Add(time.Duration(i) * time.Hour)})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] <= 0 || ids[1] <= ids[0] || ids[2] <= ids[1] {
		t.Fatalf("ids %v", ids)
	}
	got, err := s.IPProposal(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	want := IPProposal{ID: ids[0], UAI: "0671234X", Zones: plan, Base: base, Comment: "Wifi du CDI, é’ 0", ProposedBy: "tech67",
		ProposedAt: t0, Status: ProposalPending}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
	}
	if _, err := s.IPProposal(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown proposal: %v", err)
	}

	list := func(f IPProposalFilter, p Page) []int64 {
		t.Helper()
		ps, err := s.IPProposals(ctx, f, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    IPProposalFilter
		p    Page
		want []int64
	}{
		{"all, newest first", IPProposalFilter{}, Page{}, []int64{ids[2], ids[1], ids[0]}},
		{"pending", IPProposalFilter{Status: ProposalPending}, Page{}, []int64{ids[2], ids[1], ids[0]}},
		{"refused", IPProposalFilter{Status: ProposalRefused}, Page{}, nil},
		{"one school", IPProposalFilter{UAI: "0681234A"}, Page{}, []int64{ids[1]}},
		{"the Bas-Rhin", IPProposalFilter{Scope: []string{"067"}}, Page{}, []int64{ids[2], ids[0]}},
		{"a prefix and a UAI", IPProposalFilter{Scope: []string{"0672", "0681234A"}}, Page{}, []int64{ids[2], ids[1]}},
		{"a wildcard is no wildcard", IPProposalFilter{Scope: []string{"06%"}}, Page{}, nil},
		{"first page", IPProposalFilter{}, Page{Limit: 2}, []int64{ids[2], ids[1]}},
		{"next page", IPProposalFilter{}, Page{After: strconv.FormatInt(ids[1], 10), Limit: 2}, []int64{ids[0]}},
	} {
		if got := list(c.f, c.p); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if _, err := s.IPProposals(ctx, IPProposalFilter{}, Page{After: "x"}); err == nil {
		t.Error("a bad page key was accepted")
	}

	decided := want
	decided.Status, decided.DecidedBy, decided.DecidedAt, decided.Reason, decided.DraftRevision = ProposalValidated, "rssi", t0.Add(48*time.Hour), "vu", 12
	decided.Base = []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.67.0.0/24"}, Profile: "eleves"}}
	decide := func(p IPProposal) error {
		return s.Update(ctx, func(tx Tx) error { return tx.DecideIPProposal(ctx, p) })
	}
	if err := decide(decided); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IPProposal(ctx, ids[0]); !reflect.DeepEqual(got, decided) {
		t.Fatalf("decided\n%+v\nwant\n%+v", got, decided)
	}
	refused := decided
	refused.Status = ProposalRefused
	if err := decide(refused); !errors.Is(err, ErrConflict) {
		t.Fatalf("deciding twice: %v", err)
	}
	refused.ID = 999
	if err := decide(refused); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deciding an unknown proposal: %v", err)
	}
	pending := want
	pending.ID = ids[1]
	if err := decide(pending); err == nil {
		t.Fatal("pending is not a decision")
	}
	if got := list(IPProposalFilter{Status: ProposalValidated}, Page{}); !reflect.DeepEqual(got, []int64{ids[0]}) {
		t.Fatalf("validated: %v", got)
	}
}

// TestMoveKeepsIPProposals: a move to PostgreSQL copies the proposals, and
// the copy's ids go on after the moved ones.
func TestMoveKeepsIPProposals(t *testing.T) {
	ctx := context.Background()
	src, _ := open(t)
	fill(t, src)
	plan := []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.67.1.0/24"}, Profile: "eleves"}}
	var id int64
	err := src.Update(ctx, func(tx Tx) error {
		var err error
		if id, err = tx.CreateIPProposal(ctx, IPProposal{UAI: "0671234X", Zones: plan, Comment: "c", ProposedBy: "tech67", ProposedAt: t0}); err != nil {
			return err
		}
		return tx.DecideIPProposal(ctx, IPProposal{ID: id, Status: ProposalRefused, DecidedBy: "rssi", DecidedAt: t0, Reason: "non"})
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := openPostgres(t, pgtest.Shared(t).Database(t), "ac_strasbourg")
	rep, err := Move(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows["ip_proposals"] != 1 {
		t.Fatalf("rows moved: %v", rep.Rows)
	}
	want, _ := src.IPProposals(ctx, IPProposalFilter{}, Page{})
	got, err := dst.IPProposals(ctx, IPProposalFilter{}, Page{})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("moved %+v (%v), want %+v", got, err, want)
	}
	var next int64
	err = dst.Update(ctx, func(tx Tx) error {
		next, err = tx.CreateIPProposal(ctx, IPProposal{UAI: "0671234X", Zones: plan, Comment: "c", ProposedBy: "tech67", ProposedAt: t0})
		return err
	})
	if err != nil || next <= id {
		t.Fatalf("id %d after moving %d: %v", next, id, err)
	}
}
