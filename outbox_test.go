package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
	conn.QueryRow(`SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL`).Scan(&pending)
	if pending != n {
		t.Fatalf("%d mails waiting while SMTP is down, want %d", pending, n)
	}
	var attempts int
	for deadline := time.Now().Add(10 * time.Second); attempts == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		conn.QueryRow(`SELECT coalesce(max(attempts), 0) FROM mail_outbox`).Scan(&attempts)
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
	conn.QueryRow(`SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL`).Scan(&pending)
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
	// The same SECRET_KEY before and after: development would make a new
	// one for the restarted process, which could not open the queued mail.
	env := []string{"DATABASE_URL=" + dsn, "SMTP_HOST=127.0.0.1", fmt.Sprintf("SMTP_PORT=%d", port), "SMTP_TLS=none", "MAIL_FROM=noreply@example.com",
		"SHUTDOWN_DELAY=0s", "SECRET_KEY=" + testSecretKey}
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

// Sent and failed rows are purged after the retention; mails still
// waiting, and rows finished lately, are kept.
func TestOutboxPurge(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("p@example.com", "password-123") // one verification mail, waiting
	a.db.Exec(`INSERT INTO mail_outbox (kind, recipient, created_at, next_attempt_at, sent_at) VALUES ('verify', 'old@example.com', now() - interval '9 days', now(), now() - interval '8 days')`)
	a.db.Exec(`INSERT INTO mail_outbox (kind, recipient, created_at, next_attempt_at, failed_at) VALUES ('verify', 'dead@example.com', now() - interval '9 days', now(), now() - interval '8 days')`)
	a.db.Exec(`INSERT INTO mail_outbox (kind, recipient, created_at, next_attempt_at, sent_at) VALUES ('verify', 'new@example.com', now() - interval '1 day', now(), now() - interval '1 day')`)
	if err := a.deps.store.purgeOutbox(context.Background(), time.Now().Add(-outboxRetention)); err != nil {
		t.Fatal(err)
	}
	var left string
	a.db.QueryRow(`SELECT string_agg(recipient, ',' ORDER BY recipient) FROM mail_outbox`).Scan(&left)
	if left != "new@example.com,p@example.com" {
		t.Fatalf("after the purge: %s, want the waiting mail and the one sent a day ago", left)
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
	w := &outboxWorker{store: a.deps.store, mailer: a.deps.mailer, logger: slog.New(slog.DiscardHandler), interval: 10 * time.Millisecond, maxAttempts: 10,
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
	a.db.QueryRow(`SELECT string_agg(recipient, ',') FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE sent_at IS NULL) FROM mail_outbox`).Scan(&sentTo, &waiting)
	if sentTo != first || waiting != 1 {
		t.Fatalf("after the shutdown: sent to %q (want %q), %d waiting (want 1)", sentTo, first, waiting)
	}
}

// A mail the server refuses for good (550) is given up at once; one that
// cannot be delivered is given up after MAIL_MAX_ATTEMPTS. Either way it
// is marked failed with no body, logged at warn, counted, and no longer
// pending.
func TestUndeliverableMailIsGivenUp(t *testing.T) {
	check := func(t *testing.T, rn *running, dsn, to string, attempts int) {
		t.Helper()
		db := mustOpen(t, dsn)
		var n int
		var bodyGone bool
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := db.QueryRow(`SELECT attempts, body IS NULL FROM mail_outbox WHERE recipient = $1 AND failed_at IS NOT NULL`, to).Scan(&n, &bodyGone)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the mail to %s was never given up:\n%s", to, rn.logs)
			}
		}
		if n != attempts || !bodyGone {
			t.Fatalf("given up after %d attempts (want %d), body cleared: %v", n, attempts, bodyGone)
		}
		lines := rn.logs.linesWith(t, "msg", "outbox: a mail could not be delivered and is given up")
		if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["attempts"] != float64(attempts) {
			t.Fatalf("give-up lines: %v", lines)
		}
		_, samples := scrape(t, metricsAddrOf(t, rn))
		if samples[`mail_sent_total{result="failed"}`] != 1 || samples["mail_outbox_pending"] != 0 {
			t.Fatalf("metrics: failed %v, pending %v", samples[`mail_sent_total{result="failed"}`], samples["mail_outbox_pending"])
		}
	}
	t.Run("refused for good", func(t *testing.T) {
		dsn, _, rn := startWithSMTP(t)
		expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "bounce@example.com", "password": "password-123"}}), 201)
		check(t, rn, dsn, "bounce@example.com", 1)
	})
	t.Run("out of attempts", func(t *testing.T) {
		_, dsn := newTestDB(t)
		env := mailEnv(dsn, freePort(t)) // nothing listens there
		env["MAIL_MAX_ATTEMPTS"] = "2"
		rn := startRun(t, env)
		waitReady(t, rn.url())
		expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "carol@example.com", "password": "password-123"}}), 201)
		check(t, rn, dsn, "carol@example.com", 2)
		if len(rn.logs.linesWith(t, "msg", "outbox: sending a mail failed; it will be retried")) != 1 {
			t.Fatal("the first failure was not a retry")
		}
	})
}

// metricsAddrOf is the metrics listener's address from the start-up log.
func metricsAddrOf(t *testing.T, rn *running) string {
	t.Helper()
	for _, l := range rn.logs.linesWith(t, "msg", "metrics listening") {
		return l["addr"].(string)
	}
	t.Fatal("no metrics listener")
	return ""
}

// Rows the previous release queued in clear (during a rolling update) are
// adopted: sealed into mail_outbox and deleted from the old table, whose
// sent rows go too; a recovery request stays a request.
func TestLegacyOutboxIsAdopted(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("alice@example.com", "password-123")
	a.deliverMail()
	msg, _, err := a.deps.mailer.compose("password_changed", "bob@example.com", "https://app.example.com/recover-password")
	if err != nil {
		t.Fatal(err)
	}
	a.db.Exec(`INSERT INTO outbox (kind, recipient, message, created_at, next_attempt_at) VALUES ('password_changed', 'bob@example.com', $1, now(), now())`, msg)
	a.db.Exec(`INSERT INTO outbox (kind, recipient, created_at, next_attempt_at) VALUES ('password_recovery', 'alice@example.com', now(), now())`)
	a.db.Exec(`INSERT INTO outbox (kind, recipient, message, created_at, next_attempt_at, sent_at) VALUES ('verify', 'old@example.com', 'a link', now(), now(), now())`)
	w := &outboxWorker{store: a.deps.store, mailer: a.deps.mailer, logger: slog.New(slog.DiscardHandler)}
	w.adoptLegacy(context.Background())
	var left int
	a.db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&left)
	var plain int
	a.db.QueryRow(`SELECT count(*) FROM mail_outbox WHERE position($1::bytea IN body) > 0`, []byte("bob@example.com")).Scan(&plain)
	if left != 0 || plain != 0 {
		t.Fatalf("after adoption: %d rows left in the old table, %d adopted in clear", left, plain)
	}
	mails := a.deliverMail()
	mailTo(t, mails, "bob@example.com", "password was changed")
	tokenFrom(t, mailTo(t, mails, "alice@example.com", "Reset"), "/reset-password")
}
