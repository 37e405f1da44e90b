package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// The outbox worker: one per replica. It claims one due row at a time with
// FOR UPDATE SKIP LOCKED (so with several replicas each row goes to one),
// and, in the same transaction, either turns a request into a mail (or into
// nothing), or opens a mail, sends it while holding the row's lock, and
// marks it sent, retried later with exponential backoff and jitter, or
// failed. A crash mid-send rolls the claim back, so the mail is sent again
// later: delivery is at least once, and twice only when a process dies
// between the SMTP server accepting a message and the commit recording it.
//
// A mail stops after maxAttempts attempts, or at once when the server
// refuses it for good (a 5xx reply): it is then marked failed, its body
// cleared, logged at warn and counted.

// sendFunc delivers one message to one recipient.
type sendFunc func(ctx context.Context, to string, message []byte) error

type outboxWorker struct {
	store       *store
	mailer      *mailer
	send        sendFunc
	logger      *slog.Logger
	interval    time.Duration // how often an idle worker looks for due rows
	maxAttempts int
	result      func(result string) // each attempt's outcome, for metrics: sent, retried, failed
}

const (
	outboxPollInterval = 500 * time.Millisecond
	outboxSendTimeout  = 30 * time.Second
	outboxRetention    = 7 * 24 * time.Hour

	// The requests a worker turns into a mail off the request's path, so
	// the answer takes the same time whether or not the address has an
	// account.
	requestPasswordReset = "password_recovery"
	requestVerification  = "verification_resend"
)

// run works until ctx ends; it stops claiming then, and finishes the send
// in hand.
func (w *outboxWorker) run(ctx context.Context) {
	w.adoptLegacy(ctx)
	for ctx.Err() == nil {
		worked, err := w.processOne(ctx)
		if err != nil && ctx.Err() == nil {
			w.logger.Warn("outbox: could not process a row", "error", err.Error())
		}
		if worked && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.interval):
		}
	}
}

// processOne handles the oldest due row, if any.
func (w *outboxWorker) processOne(ctx context.Context) (bool, error) {
	work := context.WithoutCancel(ctx) // a claimed row is finished even while shutting down
	tx, err := w.store.db.BeginTx(work, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	row, err := w.store.claimOutbox(work, tx)
	if err != nil || row == nil {
		return false, err
	}
	switch row.kind {
	case requestPasswordReset, requestVerification:
		err = w.fulfil(work, tx, row)
	default:
		err = w.deliver(work, tx, row)
	}
	if err != nil {
		return true, err
	}
	return true, tx.Commit()
}

// fulfil turns a request into a token mail when the address is an active
// account's (and, for a verification, still unverified); mailToken keeps
// to the caps. Either way the request is done.
func (w *outboxWorker) fulfil(ctx context.Context, tx *sql.Tx, row *outboxRow) error {
	u, err := w.store.lockUserByEmail(ctx, tx, row.recipient)
	switch {
	case errors.Is(err, errMissing): // no such account: nothing to send
		err = nil
	case err != nil:
	case !u.IsActive:
	case row.kind == requestPasswordReset:
		err = w.mailer.mailToken(ctx, tx, u, purposeReset)
	case !u.EmailVerified:
		err = w.mailer.mailToken(ctx, tx, u, purposeVerify)
	}
	if err != nil {
		return err
	}
	return w.store.markSent(ctx, tx, row.id)
}

// deliver sends a queued mail and records the outcome.
func (w *outboxWorker) deliver(ctx context.Context, tx *sql.Tx, row *outboxRow) error {
	msg, err := w.mailer.open(row)
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, outboxSendTimeout)
		err = w.send(sendCtx, row.recipient, msg)
		cancel()
	}
	attempts := row.attempts + 1
	switch {
	case err == nil:
		w.count("sent")
		return w.store.markSent(ctx, tx, row.id)
	case refusedForGood(err) || attempts >= w.maxAttempts:
		w.count("failed")
		w.logger.Warn("outbox: a mail could not be delivered and is given up", "kind", row.kind, "message_id", row.messageID,
			"attempts", attempts, "error", err.Error())
		return w.store.markFailed(ctx, tx, row.id, truncate(err.Error(), 500))
	default:
		w.count("retried")
		retryAt := w.store.timestamp().Add(backoff(attempts))
		w.logger.Warn("outbox: sending a mail failed; it will be retried", "kind", row.kind, "message_id", row.messageID,
			"attempts", attempts, "retry_at", retryAt.Format(time.RFC3339), "error", err.Error())
		return w.store.markRetry(ctx, tx, row.id, retryAt, truncate(err.Error(), 500))
	}
}

func (w *outboxWorker) count(result string) {
	if w.result != nil {
		w.result(result)
	}
}

// refusedForGood is an SMTP reply of the 5xx class: the server will not
// take this mail however often it is sent (no such mailbox, policy).
func refusedForGood(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600
}

// adoptLegacy moves the previous release's unsent rows (written in clear
// by its replicas during a rolling update) into mail_outbox, sealed, and
// deletes the old table's rows. It runs at start and with the hourly
// janitor, until a later release drops the old table.
func (w *outboxWorker) adoptLegacy(ctx context.Context) {
	err := w.store.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := w.store.claimLegacyOutbox(ctx, tx, 1000)
		if err != nil {
			return err
		}
		ids := make([]int64, 0, len(rows))
		for _, r := range rows {
			adopted := outboxRow{kind: r.kind, recipient: r.recipient}
			if r.body != nil {
				adopted.body = w.mailer.sealer.seal(r.body, []byte(r.recipient))
				if m, err := mail.ReadMessage(bytes.NewReader(r.body)); err == nil {
					adopted.messageID = m.Header.Get("Message-Id")
				}
			}
			if err := w.store.enqueue(ctx, tx, adopted); err != nil {
				return err
			}
			ids = append(ids, r.id)
		}
		return w.store.deleteLegacyOutbox(ctx, tx, ids)
	})
	if err != nil && ctx.Err() == nil {
		w.logger.Warn("outbox: could not adopt the previous release's queued mail", "error", err.Error())
	}
}

// backoff is 2^(attempt-1) seconds, at most an hour, less up to a fifth at
// random so that retries of many rows spread out.
func backoff(attempt int) time.Duration {
	d := time.Hour
	if attempt < 13 {
		d = min(time.Duration(1<<(attempt-1))*time.Second, time.Hour)
	}
	return d - time.Duration(rand.Float64()*0.2*float64(d))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// smtpSender delivers over SMTP with net/smtp.
func smtpSender(cfg smtpConfig, from string) sendFunc {
	return func(ctx context.Context, to string, message []byte) error {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		deadline, _ := ctx.Deadline()
		d := &net.Dialer{Deadline: deadline}
		var conn net.Conn
		var err error
		if cfg.TLS == "tls" {
			conn, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12})
		} else {
			conn, err = d.DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			return fmt.Errorf("smtp: connect %s: %w", addr, err)
		}
		conn.SetDeadline(deadline)
		c, err := smtp.NewClient(conn, cfg.Host)
		if err != nil {
			conn.Close()
			return fmt.Errorf("smtp: greeting: %w", err)
		}
		defer c.Close()
		if cfg.TLS == "starttls" {
			if ok, _ := c.Extension("STARTTLS"); !ok {
				return errors.New("smtp: the server does not offer STARTTLS (set SMTP_TLS=none only for a local relay)")
			}
			if err := c.StartTLS(&tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}); err != nil {
				return fmt.Errorf("smtp: starttls: %w", err)
			}
		}
		if cfg.Username != "" {
			if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host)); err != nil {
				return fmt.Errorf("smtp: auth: %w", err)
			}
		}
		if err := c.Mail(from); err != nil {
			return fmt.Errorf("smtp: MAIL FROM: %w", err)
		}
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp: RCPT TO: %w", err)
		}
		w, err := c.Data()
		if err != nil {
			return fmt.Errorf("smtp: DATA: %w", err)
		}
		if _, err := w.Write(message); err != nil {
			return fmt.Errorf("smtp: write: %w", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("smtp: end of data: %w", err)
		}
		return c.Quit()
	}
}

// logSender is development without SMTP_HOST: each mail is logged at info
// with its text, links included (the one place a token may reach a log,
// and only in development).
func logSender(logger *slog.Logger) sendFunc {
	return func(_ context.Context, to string, message []byte) error {
		subject, text := "", string(message)
		if i := strings.Index(text, "Subject: "); i >= 0 {
			subject = text[i+9 : i+9+strings.IndexAny(text[i+9:], "\r\n")]
		}
		links := []string{}
		for _, f := range strings.Fields(strings.ReplaceAll(strings.ReplaceAll(text, "=\r\n", ""), "=3D", "=")) {
			if strings.HasPrefix(f, "http://") || strings.HasPrefix(f, "https://") {
				links = append(links, f)
			}
		}
		logger.Info("mail (development: logged, not sent)", "to", to, "subject", subject, "links", links)
		return nil
	}
}
