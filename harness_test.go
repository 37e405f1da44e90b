package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// adminDSN is where tests create and drop their databases.
func adminDSN() string {
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// newTestDB creates an empty database for one test and drops it afterwards.
func newTestDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	admin, err := sql.Open("pgx", adminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database (is PostgreSQL running? make test starts it): %v", err)
	}
	u, _ := url.Parse(adminDSN())
	u.Path = "/" + name
	dsn := u.String()
	db, err := sql.Open("pgx", genericPlans(dsn)) // as openDB opens the service's pool
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin, err := sql.Open("pgx", adminDSN())
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return db, dsn
}

// migratedDB is newTestDB with the schema applied.
func migratedDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db, dsn := newTestDB(t)
	if _, err := migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db, dsn
}

// fakeClock is a clock tests step by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log output safely from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines parses every line as a JSON object, failing the test on any that
// is not one.
func (b *logBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// linesWith returns the log lines whose key equals value.
func (b *logBuffer) linesWith(t testing.TB, key, value string) []map[string]any {
	var out []map[string]any
	for _, l := range b.lines(t) {
		if s, _ := l[key].(string); s == value {
			out = append(out, l)
		}
	}
	return out
}

// testApp is the real handler over a real, fresh database, with a fake
// clock and cheap password hashing.
type testApp struct {
	t      testing.TB
	srv    *httptest.Server
	db     *sql.DB
	dsn    string
	logs   *logBuffer
	clock  *fakeClock
	deps   serverDeps
	cfg    config
	handle http.Handler
}

// testIterations keeps PBKDF2 cheap in tests; passwords_test.go checks the
// real cost.
const testIterations = 1000

// envMap is a test's environment: the variables in m are set, even when
// empty; the rest are unset.
func envMap(m map[string]string) lookupEnv {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func devConfig(t testing.TB, env map[string]string) config {
	t.Helper()
	cfg, err := loadConfig(envMap(env))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func newTestApp(t testing.TB, env map[string]string) *testApp {
	t.Helper()
	db, dsn := migratedDB(t)
	return newTestAppOn(t, db, dsn, env)
}

// newTestAppOn builds an app over an existing database (two "replicas"
// can share one).
func newTestAppOn(t testing.TB, db *sql.DB, dsn string, env map[string]string) *testApp {
	t.Helper()
	return newTestAppHashing(t, db, dsn, env, testIterations)
}

// newTestAppHashing is newTestAppOn with passwords hashed at iterations
// (the benchmarks' production cost: passwordIterations).
func newTestAppHashing(t testing.TB, db *sql.DB, dsn string, env map[string]string, iterations int) *testApp {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["DATABASE_URL"] = dsn
	// Most tests register and log in many times from one address; the
	// rate-limit tests set their own budgets.
	for k, v := range map[string]string{"LOG_LEVEL": "debug", "RATE_LIMIT_AUTH_REQUESTS": "100000", "RATE_LIMIT_API_REQUESTS": "100000"} {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	cfg := devConfig(t, env)
	// The pool as openDB sets it for the service.
	db.SetMaxOpenConns(cfg.DBMaxOpenConns)
	db.SetMaxIdleConns(cfg.DBMaxIdleConns)
	a := &testApp{t: t, db: db, dsn: dsn, logs: &logBuffer{}, clock: newFakeClock(), cfg: cfg}
	logger := newLogger(a.logs, cfg.LogLevel)
	health := &healthState{db: db, version: "test", commit: "abc1234", started: time.Now()}
	health.ready.Store(true)
	a.deps = newServerDeps(logger, cfg, db, health, a.clock.Now)
	a.deps.setHasher(newPasswordHasher(iterations, 4))
	a.handle = newServer(logger, cfg, a.deps)
	a.srv = httptest.NewServer(a.handle)
	t.Cleanup(a.srv.Close)
	return a
}

// response is what a test reads of an answer.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r response) str(key string) string { s, _ := r.json[key].(string); return s }

// req describes one request; body may be a string (sent as is) or any value
// (sent as JSON).
type req struct {
	method, path string
	token        string
	body         any
	contentType  string
	header       map[string]string
}

func (a *testApp) do(r req) response {
	a.t.Helper()
	return doRequest(a.t, a.srv.URL, r)
}

// expectProblem checks the problem document a 4xx/5xx must be.
func expectProblem(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status=%d, want %d; body %s", r.status, status, r.body)
	}
	if got := r.header.Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type=%q, want application/problem+json", got)
	}
	if got := r.str("code"); got != code {
		t.Fatalf("code=%q, want %q; body %s", got, code, r.body)
	}
	if r.json["status"] != float64(status) || r.str("title") != http.StatusText(status) || r.str("type") != "about:blank" {
		t.Fatalf("problem fields wrong: %s", r.body)
	}
	if id := r.header.Get("X-Request-ID"); id == "" || r.str("request_id") != id {
		t.Fatalf("request_id=%q, header %q", r.str("request_id"), id)
	}
	if r.str("detail") == "" || r.str("instance") == "" {
		t.Fatalf("problem lacks detail or instance: %s", r.body)
	}
}

// fieldErrors lists the field names of a 422.
func fieldErrors(r response) []string {
	var out []string
	errs, _ := r.json["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		out = append(out, f)
	}
	return out
}

func expectStatus(t testing.TB, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status=%d, want %d; body %s", r.status, want, r.body)
	}
}

// register creates a user over the API and returns it.
func (a *testApp) register(email, password string) map[string]any {
	a.t.Helper()
	r := a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": email, "password": password}})
	expectStatus(a.t, r, http.StatusCreated)
	return r.json
}

func (a *testApp) login(email, password string) string {
	a.t.Helper()
	r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}})
	expectStatus(a.t, r, http.StatusOK)
	return r.str("access_token")
}

// signup registers and logs in, returning the user's id and a token.
func (a *testApp) signup(email string) (id, token string) {
	a.t.Helper()
	u := a.register(email, "password-123")
	return u["id"].(string), a.login(email, "password-123")
}

// superuser creates a superuser directly in the database and logs in.
func (a *testApp) superuser(email string) (id, token string) {
	a.t.Helper()
	hash, err := a.deps.hasher.hash(context.Background(), hashClaim{}, "password-123")
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.deps.store.ensureUser(context.Background(), user{Email: email, passwordHash: hash, IsSuperuser: true}); err != nil {
		a.t.Fatal(err)
	}
	u, err := a.deps.store.userByEmail(context.Background(), email)
	if err != nil {
		a.t.Fatal(err)
	}
	return u.ID, a.login(email, "password-123")
}

// sqlOpenDead is a pool whose server does not exist.
func sqlOpenDead(t testing.TB) (*sql.DB, string) {
	dsn := "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// sqlOpenAdmin is a second client on the admin database.
func sqlOpenAdmin(t testing.TB) *sql.DB {
	db, err := sql.Open("pgx", adminDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// deliverMail runs the app's outbox worker until nothing is due, as the
// server's own worker would, and returns the mails it sent (opened, as the
// SMTP server would receive them).
func (a *testApp) deliverMail() []*mail.Message {
	a.t.Helper()
	var sent []*mail.Message
	w := &outboxWorker{store: a.deps.store, mailer: a.deps.mailer, logger: slog.New(slog.DiscardHandler), maxAttempts: 10,
		send: func(_ context.Context, _ string, msg []byte) error {
			m, err := mail.ReadMessage(bytes.NewReader(msg))
			if err != nil {
				a.t.Fatalf("a queued mail does not parse: %v", err)
			}
			sent = append(sent, m)
			return nil
		}}
	for {
		worked, err := w.processOne(context.Background())
		if err != nil {
			a.t.Fatalf("outbox: %v", err)
		}
		if !worked {
			return sent
		}
	}
}

// changeEmail moves the signed-in account of token to the address to, as
// its owner would: the change asked for with the re-authentication in
// reauth, then the link mailed to the new address followed.
func (a *testApp) changeEmail(token, to string, reauth map[string]any) {
	a.t.Helper()
	body := map[string]any{"email": to}
	for k, v := range reauth {
		body[k] = v
	}
	r := a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: body})
	if r.status != 200 || r.str("pending_email") != to {
		a.t.Fatalf("asking for an email change: %d %s", r.status, r.body)
	}
	link := tokenFrom(a.t, mailTo(a.t, a.deliverMail(), to, "Confirm your new email"), "/verify-email")
	expectStatus(a.t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": link}}), 204)
}

// deliverMailVia is deliverMail through a real SMTP server at port: what
// the app queued reaches its inbox as the server's worker would send it.
func (a *testApp) deliverMailVia(port int) {
	a.t.Helper()
	w := &outboxWorker{store: a.deps.store, mailer: a.deps.mailer, logger: slog.New(slog.DiscardHandler), maxAttempts: 10,
		send: smtpSender(smtpConfig{Host: "127.0.0.1", Port: port, TLS: "none"}, a.cfg.MailFrom.Address)}
	for {
		worked, err := w.processOne(context.Background())
		if err != nil {
			a.t.Fatalf("outbox: %v", err)
		}
		if !worked {
			return
		}
	}
}

// mailsTo are the mails of mails to `to` whose subject contains subject.
func mailsTo(mails []*mail.Message, to, subject string) []*mail.Message {
	var found []*mail.Message
	for _, m := range mails {
		subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if m.Header.Get("To") == to && strings.Contains(subj, subject) {
			found = append(found, m)
		}
	}
	return found
}

// mailTo is the one mail of mails to `to` whose subject contains subject.
func mailTo(t testing.TB, mails []*mail.Message, to, subject string) *mail.Message {
	t.Helper()
	found := mailsTo(mails, to, subject)
	if len(found) != 1 {
		t.Fatalf("%d mails %q to %s, want 1", len(found), subject, to)
	}
	return found[0]
}

// routes is the route table, as addRoutes registers it (docs on): the
// suites that must cover every route compare their lists with it.
func routes(t testing.TB) []string {
	t.Helper()
	cfg := devConfig(t, map[string]string{"DOCS_ENABLED": "true"})
	db, _ := sqlOpenDead(t)
	deps := newServerDeps(slog.New(slog.DiscardHandler), cfg, db, &healthState{db: db}, time.Now)
	return addRoutes(http.NewServeMux(), slog.New(slog.DiscardHandler), cfg, deps)
}
