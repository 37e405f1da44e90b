package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// The outbox worker: one per replica. It claims one due row at a time with
// FOR UPDATE SKIP LOCKED (so with several replicas each row goes to one),
// sends it while holding the row's lock, and marks it sent or schedules a
// retry with exponential backoff and jitter, in the same transaction. A
// crash mid-send rolls the claim back, so the mail is sent again later:
// delivery is at least once, and twice only when a process dies between
// the SMTP server accepting a message and the commit that records it.

// sendFunc delivers one message to one recipient.
type sendFunc func(ctx context.Context, to string, message []byte) error

type outboxWorker struct {
	store    *store
	mailer   *mailer
	send     sendFunc
	logger   *slog.Logger
	interval time.Duration // how often an idle worker looks for due rows
	sent     func(result string)
}

const (
	outboxPollInterval = 500 * time.Millisecond
	outboxSendTimeout  = 30 * time.Second
	outboxRetention    = 7 * 24 * time.Hour
	maxResetMailsAHour = 3
)

// run works until ctx ends; it stops claiming then, and finishes the send
// in hand.
func (w *outboxWorker) run(ctx context.Context) {
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
	if row.kind == "password_recovery" {
		if err := w.recover(work, tx, row.recipient); err != nil {
			return true, err
		}
		if err := w.store.markSent(work, tx, row.id); err != nil {
			return true, err
		}
		return true, tx.Commit()
	}
	sendCtx, cancel := context.WithTimeout(work, outboxSendTimeout)
	sendErr := w.send(sendCtx, row.recipient, row.message)
	cancel()
	if sendErr == nil {
		if w.sent != nil {
			w.sent("sent")
		}
		if err := w.store.markSent(work, tx, row.id); err != nil {
			return true, err
		}
		return true, tx.Commit()
	}
	if w.sent != nil {
		w.sent("failed")
	}
	retryAt := w.store.timestamp().Add(backoff(row.attempts + 1))
	w.logger.Warn("outbox: sending a mail failed; it will be retried", "kind", row.kind, "attempts", row.attempts+1,
		"retry_at", retryAt.Format(time.RFC3339), "error", sendErr.Error())
	if err := w.store.markFailed(work, tx, row.id, retryAt, truncate(sendErr.Error(), 500)); err != nil {
		return true, err
	}
	return true, tx.Commit()
}

// recover turns a recovery request into a reset mail when the address is
// an active account's and it has not had maxResetMailsAHour this hour.
func (w *outboxWorker) recover(ctx context.Context, tx *sql.Tx, email string) error {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = $1 FOR UPDATE`, email))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !u.IsActive) {
		return nil // nothing to send, and the caller was told the same
	}
	if err != nil {
		return err
	}
	n, err := w.store.resetTokensSince(ctx, tx, u.ID, w.store.timestamp().Add(-time.Hour))
	if err != nil || n >= maxResetMailsAHour {
		if err == nil {
			w.logger.Info("outbox: reset mail not sent: this hour's limit for the address is reached", "user_id", u.ID)
		}
		return err
	}
	token, hash := newToken()
	if err := w.store.insertToken(ctx, tx, hash, u.ID, purposeReset, u.Email, resetTokenTTL); err != nil {
		return err
	}
	msg, err := w.mailer.compose("reset", u.Email, mailData{Name: deref(u.FullName), Email: u.Email, Link: w.mailer.link("/reset-password", token)})
	if err != nil {
		return err
	}
	return w.store.enqueue(ctx, tx, "reset", u.Email, msg)
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
