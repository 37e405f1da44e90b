package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smtpServer is Debian's aiosmtpd, a real SMTP server this project did not
// write, storing each message it accepts in a Maildir.
type smtpServer struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func startSMTP(t *testing.T, port int, dir string) *smtpServer {
	t.Helper()
	needTool(t, "python3")
	if err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").Run(); err != nil {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatal("python3-aiosmtpd is not installed (scripts/test-deps.sh installs it)")
		}
		t.Skip("python3-aiosmtpd is not installed")
	}
	dir = filepath.Join(dir, "maildir") // created with its tmp, new and cur on the first message
	s := &smtpServer{port: port, dir: dir}
	s.cmd = exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("127.0.0.1:%d", port), "-c", "aiosmtpd.handlers.Mailbox", dir)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return s
		}
		if i > 200 {
			t.Fatal("the SMTP server did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *smtpServer) stop() {
	if s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.cmd.Wait()
	}
}

// received parses every delivered message.
func (s *smtpServer) received(t *testing.T) []*mail.Message {
	t.Helper()
	var out []*mail.Message
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(s.dir, sub, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := mail.ReadMessage(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// waitMail waits for a message to `to` whose subject contains subject,
// skipping the first `skip` such messages.
func (s *smtpServer) waitMail(t *testing.T, to, subject string, skip int) *mail.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, m := range s.received(t) {
			subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if m.Header.Get("To") == to && strings.Contains(subj, subject) {
				if n == skip {
					return m
				}
				n++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no mail %q to %s arrived", subject, to)
	return nil
}

// parts returns the text and HTML parts of a multipart/alternative message.
func parts(t *testing.T, m *mail.Message) (text, html string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(p))
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			text = string(body)
		} else {
			html = string(body)
		}
	}
	return text, html
}

var linkToken = regexp.MustCompile(`(https?://[^\s"<]+)\?token=([A-Za-z0-9_-]+)`)

// tokenFrom is the token of the link in a mail's text part, checked to be
// the same link as in its HTML part.
func tokenFrom(t *testing.T, m *mail.Message, path string) string {
	t.Helper()
	text, html := parts(t, m)
	match := linkToken.FindStringSubmatch(text)
	if match == nil || !strings.HasSuffix(match[1], path) || !strings.Contains(html, match[2]) {
		t.Fatalf("no %s link in the mail:\n%s\n%s", path, text, html)
	}
	return match[2]
}

// recoverLink checks that a notice ("if this was not you, reset your
// password") links, in both parts, to the frontend's page for asking a
// reset link.
func recoverLink(t *testing.T, m *mail.Message) {
	t.Helper()
	const want = "https://app.example.com/recover-password"
	text, html := parts(t, m)
	if !strings.Contains(text, want) || !strings.Contains(html, `href="`+want+`"`) {
		t.Fatalf("the notice does not link to %s:\n%s\n%s", want, text, html)
	}
}

func mailEnv(dsn string, smtpPort int) map[string]string {
	return map[string]string{"DATABASE_URL": dsn, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": fmt.Sprint(smtpPort), "SMTP_TLS": "none",
		"MAIL_FROM": "App <noreply@example.com>", "FRONTEND_URL": "https://app.example.com", "SHUTDOWN_DELAY": "0s",
		"FIRST_SUPERUSER_EMAIL": "root@example.com", "FIRST_SUPERUSER_PASSWORD": "Str0ng-admin-pw"}
}

// Register, verify by the mailed link; recover, reset by the mailed link:
// old sessions end, the new password works, the token cannot be used twice.
func TestMailFlowsEndToEnd(t *testing.T) {
	_, dsn := newTestDB(t)
	smtp := startSMTP(t, freePort(t), t.TempDir())
	rn := startRun(t, mailEnv(dsn, smtp.port))
	waitReady(t, rn.url())
	base := rn.url()

	r := doRequest(t, base, req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "Alice@Example.com", "password": "password-123", "full_name": "Alice\r\nBcc: evil@example.com"}})
	expectStatus(t, r, 201)
	if r.json["email_verified"] != false {
		t.Fatalf("a new account is verified: %s", r.body)
	}
	m := smtp.waitMail(t, "alice@example.com", "Confirm", 0)
	if m.Header.Get("Bcc") != "" || m.Header.Get("Message-Id") == "" || !strings.Contains(m.Header.Get("From"), "noreply@example.com") {
		t.Fatalf("headers: %v", m.Header)
	}
	token := tokenFrom(t, m, "https://app.example.com/verify-email")
	login := func(pw string) response {
		return doRequest(t, base, req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "alice@example.com", "password": pw}})
	}
	old := login("password-123").str("access_token")
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": token}}), 204)
	if me := doRequest(t, base, req{method: "GET", path: "/api/v1/users/me", token: old}); me.json["email_verified"] != true {
		t.Fatalf("after verification: %s", me.body)
	}
	expectProblem(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": token}}), 400, "invalid_token")
	expectProblem(t, doRequest(t, base, req{method: "POST", path: "/api/v1/users/me/verify-email", token: old}), 409, "conflict")

	// Recovery: the same 202 for a known and an unknown address.
	known := doRequest(t, base, req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": "alice@example.com"}})
	unknown := doRequest(t, base, req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": "nobody@example.com"}})
	expectStatus(t, known, 202)
	expectStatus(t, unknown, 202)
	if string(known.body) != string(unknown.body) {
		t.Fatalf("recovery answers differ: %s / %s", known.body, unknown.body)
	}
	reset := tokenFrom(t, smtp.waitMail(t, "alice@example.com", "Reset", 0), "https://app.example.com/reset-password")
	expectProblem(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": reset, "new_password": "short"}}), 422, "validation_failed")
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": reset, "new_password": "brand-new-password"}}), 204)
	if doRequest(t, base, req{method: "GET", path: "/api/v1/users/me", token: old}).status != 401 {
		t.Fatal("a session survived the password reset")
	}
	expectProblem(t, login("password-123"), 401, "unauthorized")
	expectStatus(t, login("brand-new-password"), 200)
	expectProblem(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": reset, "new_password": "another-password"}}), 400, "invalid_token")
	recoverLink(t, smtp.waitMail(t, "alice@example.com", "was reset", 0))

	// An email change: a link to the new address, a notice to the old one.
	tok := login("brand-new-password").str("access_token")
	expectStatus(t, doRequest(t, base, req{method: "PATCH", path: "/api/v1/users/me", token: tok, body: map[string]any{"email": "alice2@example.com", "current_password": "brand-new-password"}}), 200)
	recoverLink(t, smtp.waitMail(t, "alice@example.com", "email address was changed", 0))
	verify2 := tokenFrom(t, smtp.waitMail(t, "alice2@example.com", "Confirm", 0), "/verify-email")
	if me := doRequest(t, base, req{method: "GET", path: "/api/v1/users/me", token: tok}); me.json["email_verified"] != false {
		t.Fatalf("a new email starts unverified: %s", me.body)
	}
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": verify2}}), 204)

	// A password change: a notice to the account's address.
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/users/me/password", token: tok,
		body: map[string]any{"current_password": "brand-new-password", "new_password": "third-password-1"}}), 204)
	recoverLink(t, smtp.waitMail(t, "alice2@example.com", "password was changed", 0))

	// Nothing went to the unknown address; no secret reached the log.
	for _, m := range smtp.received(t) {
		if m.Header.Get("To") == "nobody@example.com" {
			t.Fatal("a mail went to an address with no account")
		}
	}
	for _, secret := range []string{token, reset, verify2, "brand-new-password"} {
		if strings.Contains(rn.logs.String(), secret) {
			t.Fatalf("a token or password reached the production-like log")
		}
	}
}

// SMTP away for a while: requests answer at once, mails wait in the
// outbox, and every one is delivered once the server is back; two service
// processes on one database send each mail exactly once.
func TestOutboxSurvivesAnOutageAndSharesWork(t *testing.T) {
	_, dsn := newTestDB(t)
	port := freePort(t)
	dir := t.TempDir()
	env := mailEnv(dsn, port)
	a := startRun(t, env)
	waitReady(t, a.url())
	b := startRun(t, mailEnv(dsn, port))
	waitReady(t, b.url())
	const n = 6 // each registration pays a full-cost hash, slow under -race
	start := time.Now()
	for i := range n {
		base := a.url()
		if i%2 == 1 {
			base = b.url()
		}
		expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "password": "password-123"}}), 201)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Logf("registrations with SMTP down took %v", d) // informational: never a timed assertion
	}
	var pending int
	conn := mustOpen(t, dsn)
	conn.QueryRow(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&pending)
	if pending != n {
		t.Fatalf("%d mails waiting while SMTP is down, want %d", pending, n)
	}
	var attempts int
	for deadline := time.Now().Add(10 * time.Second); attempts == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		conn.QueryRow(`SELECT coalesce(max(attempts), 0) FROM outbox`).Scan(&attempts)
	}
	if attempts == 0 {
		t.Fatal("no send was attempted while SMTP was down")
	}
	smtp := startSMTP(t, port, dir)
	deadline := time.Now().Add(40 * time.Second)
	for len(smtp.received(t)) < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // would a duplicate still come?
	ids := map[string]int{}
	to := map[string]int{}
	for _, m := range smtp.received(t) {
		ids[m.Header.Get("Message-Id")]++
		to[m.Header.Get("To")]++
	}
	if len(ids) != n || len(to) != n {
		t.Fatalf("%d messages for %d addresses, want %d each exactly once: %v", len(ids), len(to), n, to)
	}
	for addr, k := range to {
		if k != 1 {
			t.Fatalf("%s got %d mails", addr, k)
		}
	}
	conn.QueryRow(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&pending)
	if pending != 0 {
		t.Fatalf("%d mails still pending", pending)
	}
	if !strings.Contains(a.logs.String()+b.logs.String(), "sending a mail failed") {
		t.Fatal("the outage was not logged")
	}
}

// Killed mid-queue and restarted: nothing lost.
func TestOutboxSurvivesAKill(t *testing.T) {
	_, dsn := newTestDB(t)
	port := freePort(t)
	dir := t.TempDir()
	env := []string{"DATABASE_URL=" + dsn, "SMTP_HOST=127.0.0.1", fmt.Sprintf("SMTP_PORT=%d", port), "SMTP_TLS=none", "MAIL_FROM=noreply@example.com", "SHUTDOWN_DELAY=0s"}
	p := startBinary(t, env...)
	waitReady(t, p.url())
	for i := range 5 {
		expectStatus(t, doRequest(t, p.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": fmt.Sprintf("k%d@example.com", i), "password": "password-123"}}), 201)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	smtp := startSMTP(t, port, dir)
	p2 := startBinary(t, env...)
	waitReady(t, p2.url())
	deadline := time.Now().Add(30 * time.Second)
	for len(smtp.received(t)) < 5 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := len(smtp.received(t)); got != 5 {
		t.Fatalf("%d mails delivered after the kill and restart, want 5", got)
	}
}

// Development with no SMTP_HOST logs each mail with its link instead.
func TestDevelopmentLogsMail(t *testing.T) {
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "SHUTDOWN_DELAY": "0s"})
	waitReady(t, rn.url())
	expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "dev@example.com", "password": "password-123"}}), 201)
	deadline := time.Now().Add(10 * time.Second)
	var line map[string]any
	for line == nil && time.Now().Before(deadline) {
		for _, l := range rn.logs.linesWith(t, "to", "dev@example.com") {
			line = l
		}
		time.Sleep(100 * time.Millisecond)
	}
	if line == nil || !strings.Contains(toJSON(line["links"]), "http://localhost:5173/verify-email?token=") {
		t.Fatalf("development mail line: %v", line)
	}
	link := line["links"].([]any)[0].(string)
	u, _ := url.Parse(link)
	expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": u.Query().Get("token")}}), 204)
}

// EMAIL_VERIFICATION=required: the right password for an unverified email
// is 403 email_unverified.
func TestEmailVerificationRequired(t *testing.T) {
	a := newTestApp(t, map[string]string{"EMAIL_VERIFICATION": "required"})
	a.register("new@example.com", "password-123")
	r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "new@example.com", "password": "password-123"}})
	expectProblem(t, r, 403, "email_unverified")
	a.db.Exec(`UPDATE users SET email_verified = true`)
	a.login("new@example.com", "password-123")
	var waiting int
	a.db.QueryRow(`SELECT count(*) FROM outbox WHERE kind = 'verify'`).Scan(&waiting)
	if waiting != 1 {
		t.Fatalf("%d verification mails in the outbox, want 1 (written with the account)", waiting)
	}
}

func mustOpen(t *testing.T, dsn string) *sqlDB {
	t.Helper()
	db, err := sqlOpen(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Sent mails (they hold links) and dead tokens are purged after the
// retention; mails still waiting are kept.
func TestOutboxPurge(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("p@example.com", "password-123") // one verification mail, waiting
	a.db.Exec(`INSERT INTO outbox (kind, recipient, created_at, next_attempt_at, sent_at) VALUES ('verify', 'old@example.com', now() - interval '9 days', now(), now() - interval '8 days')`)
	if err := a.deps.store.purgeOutbox(context.Background(), time.Now().Add(-outboxRetention)); err != nil {
		t.Fatal(err)
	}
	var sent, waiting int
	a.db.QueryRow(`SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE sent_at IS NULL) FROM outbox`).Scan(&sent, &waiting)
	if sent != 0 || waiting != 1 {
		t.Fatalf("after the purge: %d sent rows (want 0), %d waiting (want 1)", sent, waiting)
	}
}

// At shutdown the worker stops claiming rows but finishes the send in hand:
// with two mails waiting and the first send blocked, cancelling the
// worker's context does not end run until that send returns; then the
// first mail is recorded as sent and the second was never claimed.
func TestOutboxWorkerFinishesTheSendInHandAtShutdown(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("first@example.com", "password-123")
	a.register("second@example.com", "password-123")
	started := make(chan string, 2)
	release := make(chan struct{})
	w := &outboxWorker{store: a.deps.store, mailer: a.deps.mailer, logger: slog.New(slog.DiscardHandler), interval: 10 * time.Millisecond,
		send: func(ctx context.Context, to string, _ []byte) error {
			started <- to
			<-release
			return ctx.Err() // the send's context must outlive the worker's
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	first := <-started
	cancel()
	select {
	case <-done:
		t.Fatal("run returned while a send was in hand")
	default:
	}
	close(release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the send finished")
	}
	if len(started) != 0 {
		t.Fatalf("a second mail was claimed after the shutdown: %s", <-started)
	}
	var sentTo string
	var waiting int
	a.db.QueryRow(`SELECT string_agg(recipient, ',') FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE sent_at IS NULL) FROM outbox`).Scan(&sentTo, &waiting)
	if sentTo != first || waiting != 1 {
		t.Fatalf("after the shutdown: sent to %q (want %q), %d waiting (want 1)", sentTo, first, waiting)
	}
}
