// Package store keeps the control plane's state: the draft policy and its
// custom lists, the published versions with their content-addressed bundle
// sections, the edges, the accounts with their sessions and API tokens, and
// the audit chain. Store is an interface so that a PostgreSQL backend can
// follow the SQLite one (OpenSQLite) without touching its callers.
//
// Every change goes through Update, one transaction that also appends the
// audit entry describing it: a change is never stored without its entry, and
// an entry never describes a change that was rolled back.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"vigie/controlplane/audit"
	"vigie/rules/policy"
)

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is a uniqueness violation (a login, list or edge that
	// already exists) or a stale draft revision.
	ErrConflict = errors.New("conflict")
)

// Draft is the policy the RSSI is editing. Its custom lists are not in
// Policy.Lists: they are rows (List, Entry), assembled at publish time.
type Draft struct {
	Policy    policy.Policy `json:"policy"`
	Revision  int64         `json:"revision"`
	UpdatedAt time.Time     `json:"updated_at"`
	UpdatedBy string        `json:"updated_by"`
}

// List is a custom list of the draft.
type List struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	// School scopes the list to one UAI (a per-school exception or block).
	School    string    `json:"school,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// Entries is the number of entries (filled by reads).
	Entries int `json:"entries"`
}

// EntryKind is what a list entry matches.
type EntryKind string

const (
	KindDomain     EntryKind = "domain"
	KindURL        EntryKind = "url"
	KindExpression EntryKind = "expression"
)

// Entry is one line of a custom list, attributable.
type Entry struct {
	List    string    `json:"list"`
	Kind    EntryKind `json:"kind"`
	Value   string    `json:"value"`
	Comment string    `json:"comment,omitempty"`
	Author  string    `json:"author"`
	Added   time.Time `json:"added"`
}

// Version is one published, signed policy. Manifest is the bundle's signed
// head; the sections it names are stored once each by hash (Section).
type Version struct {
	Serial  uint64    `json:"serial"`
	Hash    string    `json:"hash"`
	Author  string    `json:"author"`
	Comment string    `json:"comment"`
	Created time.Time `json:"created"`
	// Diff summarizes the change from the previous version (JSON).
	Diff json.RawMessage `json:"diff,omitempty"`
	// RollbackOf is the serial whose content this version republished.
	RollbackOf uint64 `json:"rollback_of,omitempty"`
	// Size is the whole bundle's size in bytes, Domains its listed names.
	Size    int64 `json:"size"`
	Domains int   `json:"domains"`
	// Manifest and Policy are only filled by Version and LatestVersion.
	Manifest []byte `json:"-"`
	// Policy is the full policy published (lists included), as JSON.
	Policy json.RawMessage `json:"-"`
}

// Edge is a registered school gateway.
type Edge struct {
	ID        string    `json:"id"`
	UAI       string    `json:"uai"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// TokenHash is the SHA-256 of the edge's bearer token (hex).
	TokenHash string `json:"-"`
	EdgeStatus
}

// EdgeStatus is what an edge last told the control plane.
type EdgeStatus struct {
	LastSeen      time.Time `json:"last_seen"`
	AppliedSerial uint64    `json:"applied_serial"`
	AppliedHash   string    `json:"applied_hash,omitempty"`
	Software      string    `json:"software,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	Remote        string    `json:"remote,omitempty"`
	// ClaimedSerial and ClaimedHash are a version the edge last said it
	// applied that this control plane never published ("version
	// inconnue"): kept apart from the applied version, and in the store
	// so that every replica, and a restarted one, flags the edge and
	// publishes past that serial. Zero once the edge reports a known
	// version.
	ClaimedSerial uint64 `json:"claimed_serial,omitempty"`
	ClaimedHash   string `json:"claimed_hash,omitempty"`
}

// User is a local account. Identity from an SSO maps onto the same row.
type User struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name,omitempty"`
	Role  string `json:"role"`
	// UAI scopes a chef_etablissement to one school.
	UAI string `json:"uai,omitempty"`
	// Scope limits a technicien to some schools: UAI prefixes (a
	// département, "067") and whole UAIs, comma-separated; empty means the
	// whole académie.
	Scope string `json:"scope,omitempty"`
	// PasswordHash is an argon2id PHC string; empty for SSO-only accounts.
	PasswordHash string    `json:"-"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	// MustChangePassword is set on a generated password: its sessions
	// may do nothing but change it.
	MustChangePassword bool `json:"must_change_password,omitempty"`
	// SSOSubject binds the account to an identity provider's user
	// ("issuer subject"); empty for a local account.
	SSOSubject string `json:"sso_subject,omitempty"`
}

// Session is a logged-in browser. IDHash is the SHA-256 of the cookie value.
type Session struct {
	IDHash    string    `json:"-"`
	UserID    int64     `json:"user_id"`
	CSRF      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Remote    string    `json:"remote,omitempty"`
}

// APIToken is a bearer token for automation, acting as its user.
type APIToken struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id"`
	Name      string    `json:"name"`
	TokenHash string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Page bounds a list read: at most Limit rows after the key After (the
// previous page's last key, "" for the first page).
type Page struct {
	After string
	Limit int
}

// MaxPage is the largest page the API serves. A store honours any Limit up
// to MaxPage+1, because the API asks for one item more than it shows to
// learn whether a next page exists: capping at MaxPage silently dropped
// the next cursor of every full page.
const MaxPage = 1000

// Reader is the read side, usable outside and inside a transaction.
type Reader interface {
	Draft(ctx context.Context) (Draft, error)
	// Lists returns every custom list with its entry count.
	Lists(ctx context.Context) ([]List, error)
	List(ctx context.Context, id string) (List, error)
	// Entries pages through a list's entries ordered by kind then value;
	// Page.After is "kind\x00value" of the last entry seen.
	Entries(ctx context.Context, list string, p Page) ([]Entry, error)
	// AllEntries returns every entry of every list, for publishing.
	AllEntries(ctx context.Context) ([]Entry, error)

	// Versions pages newest first; Page.After is a serial (decimal).
	Versions(ctx context.Context, p Page) ([]Version, error)
	Version(ctx context.Context, serial uint64) (Version, error)
	// LatestVersion returns ErrNotFound when nothing was published yet.
	LatestVersion(ctx context.Context) (Version, error)
	Section(ctx context.Context, hash [32]byte) ([]byte, error)
	HasSection(ctx context.Context, hash [32]byte) (bool, error)

	// Edges pages by id; uai filters when not empty.
	Edges(ctx context.Context, uai string, p Page) ([]Edge, error)
	Edge(ctx context.Context, id string) (Edge, error)
	EdgeByToken(ctx context.Context, tokenHash string) (Edge, error)

	Users(ctx context.Context) ([]User, error)
	User(ctx context.Context, login string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// UserBySSO finds the account bound to an SSO subject.
	UserBySSO(ctx context.Context, subject string) (User, error)
	Session(ctx context.Context, idHash string) (Session, error)
	APIToken(ctx context.Context, tokenHash string) (APIToken, error)
	APITokens(ctx context.Context, userID int64) ([]APIToken, error)

	// AuditEntries pages the chain in order from seq after+1.
	AuditEntries(ctx context.Context, after uint64, limit int) ([]audit.Entry, error)
	AuditEntry(ctx context.Context, seq uint64) (audit.Entry, error)

	// IPProposals pages the IP plan proposals newest first; Page.After is
	// an id (decimal).
	IPProposals(ctx context.Context, f IPProposalFilter, p Page) ([]IPProposal, error)
	IPProposal(ctx context.Context, id int64) (IPProposal, error)
	// AuditTail reads the chain backwards, newest first: the pages that
	// show recent entries (past exports, unblock requests, a setting's
	// last value) need the end of the log, not its beginning.
	AuditTail(ctx context.Context, q AuditQuery) ([]audit.Entry, error)
}

// AuditQuery bounds a backward read of the audit chain: the entries with a
// sequence below Before (0: up to the last) and above After (0: down to
// the first), whose action is one of Actions (any when empty), newest
// first, at most Limit of them (0 or more than 5000: 5000). After bounds
// the entries the database walks when few of them match.
type AuditQuery struct {
	Before, After uint64
	Actions       []string
	Limit         int
}

// Tx is one write transaction.
type Tx interface {
	Reader

	// PutDraft stores the draft if its revision is still rev (ErrConflict
	// otherwise) and returns the new revision.
	PutDraft(ctx context.Context, d Draft, rev int64) (int64, error)
	CreateList(ctx context.Context, l List) error
	UpdateList(ctx context.Context, l List) error
	// DeleteList removes a list and its entries.
	DeleteList(ctx context.Context, id string) error
	// AddEntries inserts entries, skipping those already present, and
	// returns those actually added.
	AddEntries(ctx context.Context, es []Entry) ([]Entry, error)
	// RemoveEntries deletes entries by list, kind and value and returns
	// those actually removed.
	RemoveEntries(ctx context.Context, list string, kind EntryKind, values []string) ([]Entry, error)

	// PutSections stores sections not stored yet.
	PutSections(ctx context.Context, secs []Section) error
	InsertVersion(ctx context.Context, v Version) error

	CreateEdge(ctx context.Context, e Edge) error
	SetEdgeToken(ctx context.Context, id, tokenHash string) error
	DeleteEdge(ctx context.Context, id string) error
	// RecordEdgeStatus stores what edges reported (not audited: it is
	// telemetry, written in batches).
	RecordEdgeStatus(ctx context.Context, st map[string]EdgeStatus) error

	CreateUser(ctx context.Context, u User) (int64, error)
	UpdateUser(ctx context.Context, u User) error
	CreateSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteUserSessions logs a user out everywhere (role change, disable).
	DeleteUserSessions(ctx context.Context, userID int64) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	CreateAPIToken(ctx context.Context, t APIToken) (int64, error)
	DeleteAPIToken(ctx context.Context, userID, id int64) error
	// DeleteUserAPITokens revokes every token of a user (password, role
	// or state changed) and says how many there were.
	DeleteUserAPITokens(ctx context.Context, userID int64) (int, error)
	TouchAPIToken(ctx context.Context, id int64, at time.Time) error

	// AppendAudit seals e after the last entry and stores it.
	AppendAudit(ctx context.Context, e *audit.Entry) error

	// CreateIPProposal stores a pending proposal and returns its id.
	CreateIPProposal(ctx context.Context, p IPProposal) (int64, error)
	// DecideIPProposal records the decision on a pending proposal (status,
	// decider, time, reason, base, draft revision): ErrConflict when it
	// was decided already.
	DecideIPProposal(ctx context.Context, p IPProposal) error
}

// Section is a content-addressed bundle section.
type Section struct {
	Hash [32]byte
	Data []byte
}

// Event kinds a shared store announces to every process using it.
const (
	// EventVersion: a version was published (Key: its serial).
	EventVersion = "version"
	// EventEdge: an edge was deleted or its token rotated (Key: its id).
	EventEdge = "edge"
	// EventResync: notifications may have been missed (the listening
	// connection was lost): reload whatever is kept in memory.
	EventResync = "resync"
)

// Event is a committed change another process made.
type Event struct {
	Kind, Key string
}

// Shared is implemented by a store that several control-plane processes
// use at once (PostgreSQL). SQLite is one process's file and has none of it.
type Shared interface {
	// Watch calls fn for each change committed by any process, itself
	// included, until ctx ends. It reconnects by itself and then sends
	// EventResync.
	Watch(ctx context.Context, fn func(Event)) error
	// Lead runs fn while this process holds the named lock, on exactly
	// one process at a time; fn's context ends when the lock is lost (its
	// connection died). Lead retries until ctx ends. A holder whose
	// connection breaks while it lives learns so at its next check (one
	// second): work run this way must tolerate that overlap, as purges
	// and list refreshes do.
	Lead(ctx context.Context, name string, fn func(ctx context.Context)) error
}

// LoginFailures keeps failed logins in the database, so that every replica
// counts the same attempts against the same limit. Both backends implement
// it; writes are not audited (the login handler audits each attempt).
type LoginFailures interface {
	// AddLoginFailure records a failed attempt for key (a login, a client
	// address) at t.
	AddLoginFailure(ctx context.Context, key string, at time.Time) error
	// LoginFailures returns key's attempts at or after since, oldest
	// first, at most limit of them.
	LoginFailures(ctx context.Context, key string, since time.Time, limit int) ([]time.Time, error)
	// ClearLoginFailures forgets key's attempts (after a successful login).
	ClearLoginFailures(ctx context.Context, key string) error
	// PruneLoginFailures drops the attempts older than before, which no
	// window looks at any more, and says how many went.
	PruneLoginFailures(ctx context.Context, before time.Time) (int, error)
}

// Store is the control plane's state.
type Store interface {
	Reader
	// Update runs fn in one write transaction, committed when fn returns nil.
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}
