package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// fastParams keep tests quick; production hashes use DefaultParams.
var fastParams = Params{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "wrong horse battery"); !errors.Is(err, ErrPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := HashPassword("court", fastParams); err == nil {
		t.Fatal("short password accepted")
	}
	h2, _ := HashPassword("correct horse battery", fastParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
}

func TestParseHashBounds(t *testing.T) {
	for _, bad := range []string{
		"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1,x=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
	} {
		if _, _, _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

func FuzzParseHash(f *testing.F) {
	h, _ := HashPassword("correct horse battery", fastParams)
	f.Add(h)
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParseHash(s)
		if err != nil {
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || p.Threads > maxThreads || len(salt) > 64 || len(key) > 64 {
			t.Fatalf("out-of-bounds parameters accepted: %+v", p)
		}
	})
}

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	log := newMemFailures()
	l := newLimiter(addrKind, 3, time.Minute)
	now := time.Unix(1000, 0)
	wait := func(at time.Time) time.Duration {
		t.Helper()
		w, err := l.wait(ctx, log, "k", at)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := 0; i < 3; i++ {
		if w := wait(now); w > 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		log.AddLoginFailure(ctx, addrKind+"k", now)
	}
	if w := wait(now.Add(10 * time.Second)); w != 50*time.Second {
		t.Fatalf("wait %v, want 50s", w)
	}
	if w := wait(now.Add(time.Minute)); w > 0 {
		t.Fatal("still blocked after the window")
	}
	log.cap = 10
	for i := 0; i < 100; i++ {
		log.AddLoginFailure(ctx, string(rune('a'+i)), now)
	}
	if len(log.m) > 10 {
		t.Fatalf("the failure log grew to %d keys", len(log.m))
	}
	if n, _ := log.PruneLoginFailures(ctx, now.Add(time.Second)); n < 10 || len(log.m) != 0 {
		t.Fatalf("pruned %d, %d keys left", n, len(log.m))
	}
}

type env struct {
	st   *store.SQLite
	svc  *Service
	now  time.Time
	pass string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "vigie.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, now: time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC), pass: "un mot de passe long"}
	e.svc = New(st, nil, Config{}, func() time.Time { return e.now })
	h, _ := HashPassword(e.pass, fastParams)
	ctx := context.Background()
	err = st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Login: "chef", Role: string(Chef), UAI: "0671234X", PasswordHash: h, CreatedAt: e.now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLoginSessionCSRF(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, sess, err := e.svc.Login(ctx, "chef", e.pass, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != Chef || id.UAI != "0671234X" || !id.CanSeeSchool("0671234X") || id.CanSeeSchool("0680001A") {
		t.Fatalf("identity %+v", id)
	}
	rec := httptest.NewRecorder()
	e.svc.SetSessionCookie(rec, sess)
	cookie := rec.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie flags: %+v", cookie)
	}
	req := func(method, csrf, origin string) (*Identity, error) {
		r := httptest.NewRequest(method, "http://cp.example/api/v1/me", nil)
		r.AddCookie(cookie)
		if csrf != "" {
			r.Header.Set("X-CSRF-Token", csrf)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return e.svc.Authenticate(r)
	}
	tests := []struct {
		name, method, csrf, origin string
		want                       error
	}{
		{"get needs no token", "GET", "", "", nil},
		{"post without token", "POST", "", "", ErrCSRF},
		{"post with wrong token", "POST", "x", "", ErrCSRF},
		{"post with token", "POST", sess.CSRF, "", nil},
		{"post from another origin", "POST", sess.CSRF, "http://evil.example", ErrCSRF},
		{"post from same origin", "POST", sess.CSRF, "http://cp.example", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := req(tt.method, tt.csrf, tt.origin)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && got.Login != "chef" {
				t.Fatalf("identity %+v", got)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e.now = e.now.Add(9 * time.Hour)
		defer func() { e.now = e.now.Add(-9 * time.Hour) }()
		if _, err := req("GET", "", ""); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("expired session: %v", err)
		}
	})
	t.Run("logout", func(t *testing.T) {
		if err := e.svc.Logout(ctx, id, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if _, err := req("GET", "", ""); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("after logout: %v", err)
		}
	})
}

func TestLoginBackoffAndAudit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, _, err := e.svc.Login(ctx, "chef", "mauvais mot de passe", "10.0.0.2:4000"); !errors.Is(err, ErrPassword) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// The sixth attempt from that address waits 15 s, even with the
	// right password; another address is not slowed down.
	_, _, err := e.svc.Login(ctx, "chef", e.pass, "10.0.0.2:4001")
	var rl *RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 15*time.Second || rl.Busy {
		t.Fatalf("sixth attempt: %v, want a 15 s back-off", err)
	}
	if _, _, err := e.svc.Login(ctx, "chef", e.pass, "10.0.0.3"); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	// The back-off doubles with each further failure, up to the window.
	pairWait := func() time.Duration {
		t.Helper()
		w, err := e.svc.byPair.wait(ctx, e.svc.fails, pairKey("chef", "10.0.0.2"), e.now)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	waits := []time.Duration{}
	for range 8 {
		e.now = e.now.Add(20 * time.Minute / 20)
		if w := pairWait(); w > 0 {
			e.now = e.now.Add(w)
		}
		e.svc.Login(ctx, "chef", "mauvais mot de passe", "10.0.0.2")
		waits = append(waits, pairWait())
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute, 15 * time.Minute, 15 * time.Minute}
	if !slices.Equal(waits, want) {
		t.Fatalf("back-off %v, want %v", waits, want)
	}
	e.now = e.now.Add(16 * time.Minute)
	if _, _, err := e.svc.Login(ctx, "chef", e.pass, "10.0.0.2"); err != nil {
		t.Fatalf("after a quiet window: %v", err)
	}
	if _, _, err := e.svc.Login(ctx, "personne", e.pass, "10.0.0.3"); !errors.Is(err, ErrPassword) {
		t.Fatalf("unknown login: %v", err)
	}
	if err := e.svc.FlushFailedLogins(ctx); err != nil {
		t.Fatal(err)
	}
	es, _ := e.st.AuditEntries(ctx, 0, 0)
	var failed, ok int
	var sum struct {
		Attempts int
		Lines    []FailedLogin
	}
	for _, a := range es {
		switch a.Action {
		case "login.failed":
			failed++
			json.Unmarshal(a.After, &sum)
		case "login":
			ok++
		}
	}
	if failed != 1 || ok != 2 || sum.Attempts != 15 || len(sum.Lines) != 3 {
		t.Fatalf("audit has %d failed (%+v) and %d good logins, want 1 entry of 15 attempts in 3 lines, and 2", failed, sum, ok)
	}
	if res := audit.Verify(es); !res.OK() {
		t.Fatalf("chain: %+v", res)
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1:4000":             "10.0.0.1",
		"10.0.0.1":                  "10.0.0.1",
		"[::ffff:10.0.0.1]:80":      "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":           "2001:db8:1:2::/64",
		"pipe":                      "pipe",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHashingCap(t *testing.T) {
	e := newEnv(t)
	e.svc = New(e.st, &countingDir{Directory: LocalDirectory{Store: e.st}}, Config{MaxHashing: 2}, func() time.Time { return e.now })
	dir := e.svc.dir.(*countingDir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy := 0
	for i := range 40 {
		wg.Go(func() {
			_, _, err := e.svc.Login(context.Background(), fmt.Sprintf("x%d", i), "mauvais mot de passe", fmt.Sprintf("10.1.0.%d", i))
			var rl *RateLimitedError
			if errors.As(err, &rl) && rl.Busy {
				mu.Lock()
				busy++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if dir.peak.Load() > 2 || busy == 0 || int(dir.calls.Load())+busy != 40 {
		t.Fatalf("peak %d concurrent hashes, %d calls, %d busy: want at most 2, and the busy ones unhashed", dir.peak.Load(), dir.calls.Load(), busy)
	}
}

// countingDir is the real local directory, watched: how many password
// checks ran and how many at once at most.
type countingDir struct {
	Directory
	calls, now, peak atomic.Int32
}

func (d *countingDir) Authenticate(ctx context.Context, login, password string) (*Identity, error) {
	d.calls.Add(1)
	n := d.now.Add(1)
	defer d.now.Add(-1)
	for {
		p := d.peak.Load()
		if n <= p || d.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return d.Directory.Authenticate(ctx, login, password)
}

func TestBearerTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _, err := e.svc.Login(ctx, "chef", e.pass, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, row, err := e.svc.CreateAPIToken(ctx, id, "script", time.Hour, "")
	if err != nil || !strings.HasPrefix(tok, APITokenPrefix) {
		t.Fatalf("token %q: %v", tok, err)
	}
	edgeTok, edgeHash := NewToken(EdgeTokenPrefix)
	e.st.Update(ctx, func(tx store.Tx) error {
		return tx.CreateEdge(ctx, store.Edge{ID: "monnet-1", UAI: "0671234X", TokenHash: edgeHash, CreatedAt: e.now})
	})
	auth := func(h string) (*Identity, error) {
		r := httptest.NewRequest("POST", "/", nil) // bearer requests need no CSRF token
		r.Header.Set("Authorization", h)
		return e.svc.Authenticate(r)
	}
	got, err := auth("Bearer " + tok)
	if err != nil || got.Login != "chef" || got.Via != ViaToken || got.TokenID != row.ID {
		t.Fatalf("API token: %+v %v", got, err)
	}
	got, err = auth("bearer " + edgeTok)
	if err != nil || got.Role != Edge || got.EdgeID != "monnet-1" || got.Actor() != "edge:monnet-1" {
		t.Fatalf("edge token: %+v %v", got, err)
	}
	for _, bad := range []string{"Bearer", "Basic abc", "Bearer vga_nope", "Bearer vge_nope", "Bearer autre"} {
		if _, err := auth(bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	e.now = e.now.Add(2 * time.Hour)
	if _, err := auth("Bearer " + tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
	if err := e.svc.RevokeAPIToken(ctx, id, row.ID, ""); err != nil {
		t.Fatal(err)
	}
}

func TestBreakGlassOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	h, _ := HashPassword("secours de l'académie", fastParams)
	e.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Login: "secours", Role: string(RSSI), PasswordHash: h, CreatedAt: e.now})
		return err
	})
	for _, tt := range []struct {
		breakGlass, login, password string
		want                        error
	}{
		{"secours", "chef", e.pass, ErrPasswordLoginDisabled},
		{"secours", "secours", "secours de l'académie", nil},
		{"chef", "chef", e.pass, ErrPasswordLoginDisabled}, // the break-glass account must be an RSSI
		{"", "chef", e.pass, nil},
	} {
		svc := New(e.st, nil, Config{BreakGlass: tt.breakGlass}, func() time.Time { return e.now })
		if _, _, err := svc.Login(ctx, tt.login, tt.password, "10.0.0.9"); !errors.Is(err, tt.want) {
			t.Errorf("break-glass %q, login %s: %v, want %v", tt.breakGlass, tt.login, err, tt.want)
		}
	}
}

// TestLoginLimitsShared: two services on one store (two replicas on one
// database) count the same failures: the back-off earned on one holds on
// the other, and a success on the other ends it.
func TestLoginLimitsShared(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := New(e.st, nil, Config{}, func() time.Time { return e.now })
	for i := 0; i < 5; i++ {
		if _, _, err := e.svc.Login(ctx, "chef", "mauvais mot de passe", "10.0.0.2:4000"); !errors.Is(err, ErrPassword) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	var rl *RateLimitedError
	if _, _, err := other.Login(ctx, "chef", e.pass, "10.0.0.2:4001"); !errors.As(err, &rl) || rl.RetryAfter != 15*time.Second {
		t.Fatalf("the other service: %v, want the 15 s back-off earned on the first", err)
	}
	e.now = e.now.Add(15 * time.Second)
	if _, _, err := other.Login(ctx, "chef", e.pass, "10.0.0.2:4002"); err != nil {
		t.Fatalf("after the back-off, on the other service: %v", err)
	}
	if left, err := e.st.LoginFailures(ctx, pairKind+pairKey("chef", "10.0.0.2"), time.Time{}, 0); err != nil || len(left) != 0 {
		t.Fatalf("after a success, the pair still has failures %v (%v)", left, err)
	}
	if left, _ := e.st.LoginFailures(ctx, addrKind+"10.0.0.2", time.Time{}, 0); len(left) != 5 {
		t.Fatalf("the address's failures: %d, want the 5 (a success from it does not clear them)", len(left))
	}
}
