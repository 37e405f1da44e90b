package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	htmltemplate "html/template"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"text/template"
	"time"
)

// Mail: each message is one of a few fixed templates (text/template for
// the plain part, html/template, which escapes, for the HTML part) in one
// multipart/alternative RFC 5322 message, and carries nothing a user typed:
// only the recipient's address and a link into FRONTEND_URL. It is queued,
// sealed, in the outbox, in the transaction of the change that causes it;
// the outbox worker (outbox.go) sends it.

//go:embed mailtemplates/mail.txt mailtemplates/mail.html
var mailTemplateFiles embed.FS

var (
	textTemplates = template.Must(template.ParseFS(mailTemplateFiles, "mailtemplates/mail.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(mailTemplateFiles, "mailtemplates/mail.html"))
)

// mailSubjects are the fixed subjects, one per kind of mail.
var mailSubjects = map[string]string{
	purposeVerify:            "Confirm your email address",
	purposeReset:             "Reset your password",
	"password_changed":       "Your password was changed",
	"password_reset":         "Your password was reset",
	"email_changed":          "Your email address was changed",
	purposeEmailChange:       "Confirm your new email address",
	"email_change_requested": "A change of your email address was asked for",
	"mfa_failed_streak":      "Someone who knows your password is trying to sign in",
	"mfa_locked":             "Two-factor sign-in is locked on your account",

	"mfa_enabled":            "Two-factor sign-in was turned on",
	"mfa_disabled":           "Two-factor sign-in was turned off",
	"mfa_codes_regenerated":  "New recovery codes were made",
	"mfa_recovery_code_used": "A recovery code was used to sign in",
	"passkey_added":          "A passkey was added to your account",
	"passkey_removed":        "A passkey was removed from your account",
}

// The pages of the frontend a mailed link opens.
var tokenPages = map[string]string{purposeVerify: "/verify-email", purposeReset: "/reset-password", purposeEmailChange: "/verify-email"}

var tokenTTLs = map[string]time.Duration{purposeVerify: verifyTokenTTL, purposeReset: resetTokenTTL}

// noticePage is where a notice's "if this was not you" link leads: the
// frontend's page for asking a reset link.
const noticePage = "/recover-password"

// What a stranger can make the service send: at most maxResetMails reset
// links to one account, and maxTokenMails reset and verification mails to
// one address, per mailCapWindow. Past a cap nothing is sent and the caller
// answers as if it were. Notices follow only an authenticated change and
// are never capped: flooding an address cannot hide one.
const (
	maxResetMails = 3
	maxTokenMails = 5
	mailCapWindow = time.Hour
)

// mailData is what a template may show.
type mailData struct {
	Subject string
	Email   string // the recipient's address
	Link    string
}

// mailer composes, seals and queues mail; the outbox worker opens and
// sends it.
type mailer struct {
	store       *store
	sealer      *sealer
	from        *mail.Address
	frontendURL string
	now         func() time.Time
	logger      *slog.Logger
}

func newMailer(s *store, cfg config, now func() time.Time, logger *slog.Logger) *mailer {
	return &mailer{store: s, sealer: newSealer(cfg.SecretKey, "mail"), from: cfg.MailFrom, frontendURL: cfg.FrontendURL, now: now, logger: logger}
}

// mailToken issues a token of purpose (reset, verify) for u, bound to u's
// address, and queues the mail that carries it, in tx. Past a cap it does
// neither and returns nil.
func (m *mailer) mailToken(ctx context.Context, tx *sql.Tx, u user, purpose string) error {
	if capped, err := m.overCap(ctx, tx, u.ID, u.Email, purpose); err != nil || capped {
		return err
	}
	token, hash := newToken()
	if err := m.store.insertToken(ctx, tx, accountToken{hash: hash, userID: u.ID, purpose: purpose, email: u.Email, ttl: tokenTTLs[purpose]}); err != nil {
		return err
	}
	return m.queue(ctx, tx, purpose, u.Email, m.link(tokenPages[purpose], token))
}

// mailEmailChange asks newEmail to confirm that it is u's new address: a
// link (bound to newEmail, and to the session keep that asked) to the new
// address, within its cap, and a notice to the current one, in tx. The
// account's email stays as it is until the link is followed. changed is
// false when the cap held the link back: nothing is pending then.
func (m *mailer) mailEmailChange(ctx context.Context, tx *sql.Tx, u user, newEmail string, keep []byte) (changed bool, err error) {
	if capped, err := m.overCap(ctx, tx, u.ID, newEmail, purposeEmailChange); err != nil || capped {
		return false, err
	}
	token, hash := newToken()
	if err := m.store.requestEmailChange(ctx, tx, u.ID, newEmail, hash, keep); err != nil {
		return false, err
	}
	if err := m.queue(ctx, tx, purposeEmailChange, newEmail, m.link(tokenPages[purposeEmailChange], token)); err != nil {
		return false, err
	}
	return true, m.mailNotice(ctx, tx, "email_change_requested", u.Email)
}

// mailNotice queues a security notice of kind to the address to (the
// account's address before the change).
func (m *mailer) mailNotice(ctx context.Context, tx *sql.Tx, kind, to string) error {
	return m.queue(ctx, tx, kind, to, m.link(noticePage, ""))
}

// overCap reports whether one more mail of purpose for userID to recipient
// would pass a cap. The recipient's lock makes concurrent requests count
// one after another.
func (m *mailer) overCap(ctx context.Context, tx *sql.Tx, userID, recipient, purpose string) (bool, error) {
	if err := m.store.lockRecipient(ctx, tx, recipient); err != nil {
		return false, err
	}
	since := m.store.timestamp().Add(-mailCapWindow)
	n, err := m.store.tokenMailsSince(ctx, tx, recipient, since)
	if err != nil {
		return false, err
	}
	capped := n >= maxTokenMails
	if !capped && purpose == purposeReset {
		if n, err = m.store.resetTokensSince(ctx, tx, userID, since); err != nil {
			return false, err
		}
		capped = n >= maxResetMails
	}
	if capped {
		m.logger.InfoContext(ctx, "mail not sent: the hourly cap for the address or account is reached", "kind", purpose, "user_id", userID)
	}
	return capped, nil
}

// queue composes kind for to, seals it and writes it to the outbox in tx.
func (m *mailer) queue(ctx context.Context, tx *sql.Tx, kind, to, link string) error {
	msg, messageID, err := m.compose(kind, to, link)
	if err != nil {
		return err
	}
	return m.store.enqueue(ctx, tx, outboxRow{kind: kind, recipient: to, body: m.sealer.seal(msg, []byte(to)), messageID: messageID})
}

// open is the message of a queued row, sealed for its recipient.
func (m *mailer) open(r *outboxRow) ([]byte, error) {
	return m.sealer.open(r.body, []byte(r.recipient))
}

// link is FRONTEND_URL + path, with the token in the fragment, which a
// browser never sends to a server nor puts in a Referer.
func (m *mailer) link(path, token string) string {
	u := strings.TrimSuffix(m.frontendURL, "/") + path
	if token != "" {
		u += "#token=" + token
	}
	return u
}

// compose renders kind to the address to, and returns the message with
// its Message-ID. to has been validated as a printable-ASCII addr-spec, so
// it cannot carry a header of its own; a CR or LF anywhere in a header
// value is refused all the same.
func (m *mailer) compose(kind, to, link string) (msg []byte, messageID string, err error) {
	d := mailData{Subject: mailSubjects[kind], Email: to, Link: link}
	var text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, kind, d); err != nil {
		return nil, "", err
	}
	page, err := htmlTemplates.Clone()
	if err == nil {
		_, err = page.New("body").Parse(`{{template "` + kind + `" .}}`)
	}
	if err == nil {
		err = page.ExecuteTemplate(&html, "layout", d)
	}
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	var id [16]byte
	rand.Read(id[:])
	domain := m.from.Address[strings.LastIndexByte(m.from.Address, '@')+1:]
	messageID = "<" + hex.EncodeToString(id[:]) + "@" + domain + ">"
	w := multipart.NewWriter(&buf)
	headers := [][2]string{
		{"From", m.from.String()},
		{"To", to},
		{"Subject", mime.QEncoding.Encode("utf-8", d.Subject)},
		{"Date", m.now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", messageID},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/alternative; boundary="` + w.Boundary() + `"`},
	}
	for _, h := range headers {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, "", errHeaderInjection
		}
		buf.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	buf.WriteString("\r\n")
	for _, part := range []struct {
		contentType string
		body        []byte
	}{{"text/plain; charset=utf-8", text.Bytes()}, {"text/html; charset=utf-8", html.Bytes()}} {
		pw, err := w.CreatePart(textproto.MIMEHeader{"Content-Type": {part.contentType}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, "", err
		}
		qp := quotedprintable.NewWriter(pw)
		qp.Write(bytes.ReplaceAll(bytes.ReplaceAll(part.body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
		qp.Close()
	}
	w.Close()
	return buf.Bytes(), messageID, nil
}

var errHeaderInjection = errors.New("a mail header would hold a line break")
