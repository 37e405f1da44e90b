package main

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	htmltemplate "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// Messages: built from embedded templates (text/template for the plain
// part, html/template, which escapes, for the HTML part) into one
// multipart/alternative RFC 5322 message, stored whole in the outbox so a
// retry sends the same bytes and Message-ID.

//go:embed mailtemplates/mail.txt mailtemplates/mail.html
var mailTemplateFiles embed.FS

var (
	textTemplates = template.Must(template.ParseFS(mailTemplateFiles, "mailtemplates/mail.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(mailTemplateFiles, "mailtemplates/mail.html"))
)

// mailSubjects are the fixed subjects; nothing a user typed reaches a header.
var mailSubjects = map[string]string{
	"verify":           "Confirm your email address",
	"reset":            "Reset your password",
	"password_changed": "Your password was changed",
	"password_reset":   "Your password was reset",
	"email_changed":    "Your email address was changed",
}

// mailData is what a template may show.
type mailData struct {
	Subject  string
	Name     string // the account's full name, or ""
	Email    string // the address the mail is about
	NewEmail string // email_changed: the new address
	Link     string
}

// mailer composes messages from MAIL_FROM and links into FRONTEND_URL.
type mailer struct {
	from        *mail.Address
	frontendURL string
	now         func() time.Time
}

// link is FRONTEND_URL + path, with the token in the query.
func (m *mailer) link(path, token string) string {
	u := strings.TrimSuffix(m.frontendURL, "/") + path
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// compose renders kind to the address to. to has been validated as a
// printable-ASCII addr-spec, so it cannot carry a header of its own; a CR or
// LF anywhere in a header value is refused all the same.
func (m *mailer) compose(kind, to string, d mailData) ([]byte, error) {
	d.Subject = mailSubjects[kind]
	var text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, kind, d); err != nil {
		return nil, err
	}
	page, err := htmlTemplates.Clone()
	if err == nil {
		_, err = page.New("body").Parse(`{{template "` + kind + `" .}}`)
	}
	if err == nil {
		err = page.ExecuteTemplate(&html, "layout", d)
	}
	if err != nil {
		return nil, err
	}
	var msg bytes.Buffer
	var id [16]byte
	rand.Read(id[:])
	domain := m.from.Address[strings.LastIndexByte(m.from.Address, '@')+1:]
	w := multipart.NewWriter(&msg)
	headers := [][2]string{
		{"From", m.from.String()},
		{"To", to},
		{"Subject", mime.QEncoding.Encode("utf-8", d.Subject)},
		{"Date", m.now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/alternative; boundary="` + w.Boundary() + `"`},
	}
	for _, h := range headers {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, errHeaderInjection
		}
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	for _, part := range []struct {
		contentType string
		body        []byte
	}{{"text/plain; charset=utf-8", text.Bytes()}, {"text/html; charset=utf-8", html.Bytes()}} {
		pw, err := w.CreatePart(textproto.MIMEHeader{"Content-Type": {part.contentType}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		qp.Write(bytes.ReplaceAll(bytes.ReplaceAll(part.body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
		qp.Close()
	}
	w.Close()
	return msg.Bytes(), nil
}

var errHeaderInjection = newError(codeBadRequest, "A mail header would hold a line break.")
