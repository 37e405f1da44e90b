package main

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
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
	"strconv"
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
	// A Maildir mailbox that refuses bounce* recipients for good (550).
	s.cmd = exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("127.0.0.1:%d", port), "-c", "refusing.RefusingMailbox", dir)
	wd, _ := os.Getwd()
	s.cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(wd, "testdata", "smtp"))
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
func parts(t testing.TB, m *mail.Message) (text, html string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(m.Body)
	m.Body = bytes.NewReader(raw) // readable again by the next caller
	r := multipart.NewReader(bytes.NewReader(raw), params["boundary"])
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

// linkToken is a mailed link: the page, then the token in the fragment.
var linkToken = regexp.MustCompile(`(https?://[^\s"<#]+)#token=([A-Za-z0-9_-]+)`)

// tokenFrom is the token of the link in a mail's text part, checked to be
// the same link as in its HTML part.
func tokenFrom(t testing.TB, m *mail.Message, path string) string {
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
		"FIRST_SUPERUSER_EMAIL": "root@example.com", "FIRST_SUPERUSER_PASSWORD": "Str0ng-admin-pw", "SECRET_KEY": testSecretKey}
}

// startWithSMTP runs the service in-process, ready, with a real SMTP
// server, on a fresh database; it returns the database's DSN.
func startWithSMTP(t *testing.T) (string, *smtpServer, *running) {
	t.Helper()
	_, dsn := newTestDB(t)
	smtp := startSMTP(t, freePort(t), t.TempDir())
	rn := startRun(t, mailEnv(dsn, smtp.port))
	waitReady(t, rn.url())
	return dsn, smtp, rn
}

// Register, verify by the mailed link; recover, reset by the mailed link:
// old sessions end, the new password works, the token cannot be used twice.
func TestMailFlowsEndToEnd(t *testing.T) {
	_, smtp, rn := startWithSMTP(t)
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
	if text, html := parts(t, m); strings.Contains(text+html, "Alice") || strings.Contains(text+html, "evil") {
		t.Fatalf("the mail carries text the user typed:\n%s\n%s", text, html)
	}
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

	// An email change: nothing changes until the new address follows its
	// link; the old one hears that a change was asked for, then that it
	// was made.
	tok := login("brand-new-password").str("access_token")
	r = doRequest(t, base, req{method: "PATCH", path: "/api/v1/users/me", token: tok, body: map[string]any{"email": "alice2@example.com", "current_password": "brand-new-password"}})
	if r.status != 200 || r.str("email") != "alice@example.com" || r.str("pending_email") != "alice2@example.com" {
		t.Fatalf("asking for an email change: %d %s", r.status, r.body)
	}
	recoverLink(t, smtp.waitMail(t, "alice@example.com", "change of your email address was asked for", 0))
	verify2 := tokenFrom(t, smtp.waitMail(t, "alice2@example.com", "Confirm your new email", 0), "https://app.example.com/verify-email")
	expectStatus(t, login("brand-new-password"), 200) // still the old address
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": verify2}}), 204)
	recoverLink(t, smtp.waitMail(t, "alice@example.com", "email address was changed", 0))
	if me := doRequest(t, base, req{method: "GET", path: "/api/v1/users/me", token: tok}); me.str("email") != "alice2@example.com" || me.json["email_verified"] != true || me.json["pending_email"] != nil {
		t.Fatalf("after following the link: %s", me.body)
	}

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

// Development with no SMTP_HOST logs each mail with its link instead; the
// link opens the service's own page (it serves the frontend).
func TestDevelopmentLogsMail(t *testing.T) {
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "SHUTDOWN_DELAY": "0s", "PORT": strconv.Itoa(freePort(t))})
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
	if line == nil || !strings.Contains(toJSON(line["links"]), rn.url()+"/verify-email#token=") {
		t.Fatalf("development mail line: %v", line)
	}
	link := line["links"].([]any)[0].(string)
	u, _ := url.Parse(link)
	page := doRequest(t, rn.url(), req{method: "GET", path: u.Path})
	if page.status != 200 || !strings.Contains(string(page.body), `<script type="module"`) {
		t.Fatalf("the mailed link's page: %d %.200s", page.status, page.body)
	}
	expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": strings.TrimPrefix(u.Fragment, "token=")}}), 204)
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
	a.db.QueryRow(`SELECT count(*) FROM mail_outbox WHERE kind = 'verify'`).Scan(&waiting)
	if waiting != 1 {
		t.Fatalf("%d verification mails in the outbox, want 1 (written with the account)", waiting)
	}
}

func mustOpen(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// settled waits until the outbox has nothing left to do (every request
// turned into mail or nothing, every mail sent), so a count of what
// arrived is final.
func settled(t *testing.T, dsn string) {
	t.Helper()
	db := mustOpen(t, dsn)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var pending int
		db.QueryRow(`SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL`).Scan(&pending)
		if pending == 0 {
			time.Sleep(300 * time.Millisecond) // the SMTP server writes what it accepted
			return
		}
	}
	t.Fatal("the outbox never settled")
}

func countMail(t *testing.T, smtp *smtpServer, to, subject string) int {
	t.Helper()
	n := 0
	for _, m := range smtp.received(t) {
		subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if m.Header.Get("To") == to && strings.Contains(subj, subject) {
			n++
		}
	}
	return n
}

// The caps count: six recovery requests for one account mail three reset
// links, each still valid when the next is issued; a flood of verification
// resends stops at five token mails to the address; past a cap the answer
// is the same. A security notice is never capped away.
func TestMailCapsCount(t *testing.T) {
	dsn, smtp, rn := startWithSMTP(t)
	base := rn.url()
	post := func(path string, body map[string]any) response {
		return doRequest(t, base, req{method: "POST", path: path, body: body})
	}
	expectStatus(t, post("/api/v1/auth/register", map[string]any{"email": "alice@example.com", "password": "password-123"}), 201)
	expectStatus(t, post("/api/v1/auth/register", map[string]any{"email": "bob@example.com", "password": "password-123"}), 201)

	var answers []string
	for range 6 {
		r := post("/api/v1/auth/password-recovery", map[string]any{"email": "alice@example.com"})
		expectStatus(t, r, 202)
		answers = append(answers, string(r.body))
	}
	for range 6 {
		r := post("/api/v1/auth/verify-email/resend", map[string]any{"email": "bob@example.com"})
		expectStatus(t, r, 202)
		answers = append(answers, string(r.body))
	}
	settled(t, dsn)
	if n := countMail(t, smtp, "alice@example.com", "Reset"); n != maxResetMails {
		t.Fatalf("%d reset mails for six requests, want %d", n, maxResetMails)
	}
	if n := countMail(t, smtp, "bob@example.com", "Confirm"); n != maxTokenMails {
		t.Fatalf("%d verification mails to one address, want %d", n, maxTokenMails)
	}
	for _, a := range answers[1:6] {
		if a != answers[0] {
			t.Fatalf("a capped recovery answered differently: %s / %s", a, answers[0])
		}
	}
	for _, a := range answers[7:] {
		if a != answers[6] {
			t.Fatalf("a capped resend answered differently: %s / %s", a, answers[6])
		}
	}

	// The first link issued still works after two more were issued.
	db := mustOpen(t, dsn)
	var firstHash []byte
	db.QueryRow(`SELECT token_hash FROM account_tokens WHERE purpose = 'reset' ORDER BY created_at, token_hash LIMIT 1`).Scan(&firstHash)
	var first string
	for i := range maxResetMails {
		if tok := tokenFrom(t, smtp.waitMail(t, "alice@example.com", "Reset", i), "/reset-password"); string(hashToken(tok)) == string(firstHash) {
			first = tok
		}
	}
	expectStatus(t, post("/api/v1/auth/password-reset", map[string]any{"token": first, "new_password": "a brand new passphrase"}), 204)

	// Bob's address is at its cap; a notice of a change he made still comes.
	tok := doRequest(t, base, req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "bob@example.com", "password": "password-123"}}).str("access_token")
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/users/me/password", token: tok,
		body: map[string]any{"current_password": "password-123", "new_password": "bob-new-password"}}), 204)
	recoverLink(t, smtp.waitMail(t, "bob@example.com", "password was changed", 0))
	if len(rn.logs.linesWith(t, "msg", "mail not sent: the hourly cap for the address or account is reached")) != 5 {
		t.Fatalf("the capped mails were not logged, one line each:\n%s", rn.logs)
	}
}

// A dump of the database yields no token that was mailed: not while the
// mail waits (its body is sealed), not once it is sent (its body is gone).
func TestDatabaseDumpHoldsNoToken(t *testing.T) {
	pgDump := needTool(t, "pg_dump")
	_, dsn := newTestDB(t)
	port := freePort(t) // no SMTP server yet: the mails wait
	rn := startRun(t, mailEnv(dsn, port))
	waitReady(t, rn.url())
	base := rn.url()
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "alice@example.com", "password": "password-123"}}), 201)
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": "alice@example.com"}}), 202)
	db := mustOpen(t, dsn)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var waiting int
		db.QueryRow(`SELECT count(*) FROM mail_outbox WHERE kind IN ('verify', 'reset') AND body IS NOT NULL AND attempts > 0`).Scan(&waiting)
		if waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two mails were never queued and tried")
		}
	}
	dump := func() string {
		out, err := exec.Command(pgDump, "--data-only", dsn).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		return string(out)
	}
	queued := dump()
	smtp := startSMTP(t, port, t.TempDir())
	verifyMail := smtp.waitMail(t, "alice@example.com", "Confirm", 0)
	resetMail := smtp.waitMail(t, "alice@example.com", "Reset", 0)
	settled(t, dsn)
	sent := dump()
	if !strings.Contains(sent, resetMail.Header.Get("Message-Id")) || !strings.Contains(queued, "mail_outbox") {
		t.Fatal("the dumps lack the outbox rows: the grep below would prove nothing")
	}
	for _, token := range []string{tokenFrom(t, verifyMail, "/verify-email"), tokenFrom(t, resetMail, "/reset-password")} {
		// Two halves, as text and as bytea hex: a line break in the
		// quoted-printable body can split one of them, not both.
		for _, piece := range []string{token[:20], token[20:40]} {
			for name, d := range map[string]string{"queued": queued, "sent": sent} {
				if strings.Contains(d, piece) || strings.Contains(d, hex.EncodeToString([]byte(piece))) {
					t.Fatalf("the dump with the mail %s holds a mailed token", name)
				}
			}
		}
	}
	if strings.Contains(rn.logs.String(), "#token=") {
		t.Fatal("a production-like log holds a link")
	}
}

// An email change waits for the new address to prove itself, through the
// real SMTP server: the account keeps its address and shows pending_email;
// a registration of the address voids the change, and so does another
// account's confirmed change to it, and so does time; following a live link
// switches the address, verified, and ends every other session but the one
// that asked.
func TestEmailChangeWaitsForTheNewAddress(t *testing.T) {
	dsn, smtp, rn := startWithSMTP(t)
	base := rn.url()
	db := mustOpen(t, dsn)
	call := func(method, path, token string, body any) response {
		return doRequest(t, base, req{method: method, path: path, token: token, body: body})
	}
	signUp := func(email string) (first, second string) {
		expectStatus(t, call("POST", "/api/v1/auth/register", "", map[string]any{"email": email, "password": "password-123"}), 201)
		login := func() string {
			return call("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "password-123"}).str("access_token")
		}
		return login(), login()
	}
	ask := func(token, to string) string {
		t.Helper()
		r := call("PATCH", "/api/v1/users/me", token, map[string]any{"email": to, "current_password": "password-123"})
		if r.status != 200 || r.str("pending_email") != to {
			t.Fatalf("asking for %s: %d %s", to, r.status, r.body)
		}
		return r.str("email")
	}
	follow := func(link string) response {
		return call("POST", "/api/v1/auth/verify-email", "", map[string]any{"token": link})
	}
	pending := func(token string) any { return call("GET", "/api/v1/users/me", token, nil).json["pending_email"] }
	linkTo := func(to string, skip int) string {
		return tokenFrom(t, smtp.waitMail(t, to, "Confirm your new email", skip), "https://app.example.com/verify-email")
	}

	asker, other := signUp("alice@example.com")
	if email := ask(asker, "carol@example.com"); email != "alice@example.com" {
		t.Fatalf("the address changed before its link: %s", email)
	}
	recoverLink(t, smtp.waitMail(t, "alice@example.com", "change of your email address was asked for", 0))
	toCarol := linkTo("carol@example.com", 0)

	// A registration of the address voids the change: nothing reserved it.
	signUp("carol@example.com")
	if p := pending(asker); p != nil {
		t.Fatalf("pending_email after the address was registered: %v", p)
	}
	expectProblem(t, follow(toCarol), 400, "invalid_token")

	// Time voids it: a link 24 hours old.
	ask(asker, "dave@example.com")
	toDave := linkTo("dave@example.com", 0)
	if _, err := db.Exec(`UPDATE account_tokens SET created_at = created_at - interval '25 hours', expires_at = expires_at - interval '25 hours' WHERE email = 'dave@example.com';
		UPDATE users SET pending_email_expires_at = pending_email_expires_at - interval '25 hours' WHERE pending_email = 'dave@example.com'`); err != nil {
		t.Fatal(err)
	}
	if p := pending(asker); p != nil {
		t.Fatalf("pending_email after its link expired: %v", p)
	}
	expectProblem(t, follow(toDave), 400, "invalid_token")

	// Another account's confirmed change to the address voids it.
	bobAsker, _ := signUp("bob@example.com")
	ask(asker, "gina@example.com")
	ask(bobAsker, "gina@example.com")
	aliceToGina, bobToGina := linkTo("gina@example.com", 0), linkTo("gina@example.com", 1)
	expectStatus(t, follow(bobToGina), 204)
	expectProblem(t, follow(aliceToGina), 400, "invalid_token")
	if p := pending(asker); p != nil {
		t.Fatalf("pending_email after another account took the address: %v", p)
	}

	// A live link switches the address: verified, the asking session kept,
	// the other one ended, the old address told.
	ask(asker, "erin@example.com")
	expectStatus(t, follow(linkTo("erin@example.com", 0)), 204)
	me := call("GET", "/api/v1/users/me", asker, nil)
	if me.str("email") != "erin@example.com" || me.json["email_verified"] != true || me.json["pending_email"] != nil {
		t.Fatalf("after the link: %s", me.body)
	}
	expectProblem(t, call("GET", "/api/v1/users/me", other, nil), 401, "unauthorized")
	recoverLink(t, smtp.waitMail(t, "alice@example.com", "email address was changed", 0))
	expectStatus(t, call("POST", "/api/v1/auth/login", "", map[string]any{"email": "erin@example.com", "password": "password-123"}), 200)
	expectProblem(t, call("POST", "/api/v1/auth/login", "", map[string]any{"email": "alice@example.com", "password": "password-123"}), 401, "unauthorized")
	// Asking for the address one has cancels nothing there is, and a link
	// is spent once.
	expectProblem(t, follow(toCarol), 400, "invalid_token")
	if r := call("PATCH", "/api/v1/users/me", asker, map[string]any{"email": "gina@example.com", "current_password": "password-123"}); r.status != 409 {
		t.Fatalf("asking for an address another account holds: %d %s", r.status, r.body)
	}
	var live int
	db.QueryRow(`SELECT count(*) FROM account_tokens WHERE purpose = 'email_change' AND used_at IS NULL`).Scan(&live)
	if live != 0 {
		t.Fatalf("%d email-change links still live", live)
	}
}
