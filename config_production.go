package main

import (
	"net/url"
)

// The rules that keep development's conveniences out of a live
// installation: no placeholder secret, no missing relay or key, no CORS *.

// checkProduction holds the rules that keep development conveniences out of
// a live installation.
func checkProduction(e *envReader, c *config) {
	if c.DatabaseURL == "" {
		e.fail("DATABASE_URL", "is required in production")
	} else if u, err := url.Parse(c.DatabaseURL); err == nil {
		if pw, _ := u.User.Password(); pw == "" || isPlaceholder(pw) {
			e.fail("DATABASE_URL", "has a missing or placeholder password")
		}
	}
	if c.FirstSuperuserEmail != "" || c.FirstSuperuserPassword != "" {
		switch {
		case c.FirstSuperuserEmail == "" || c.FirstSuperuserPassword == "":
			e.fail("FIRST_SUPERUSER_EMAIL", "and FIRST_SUPERUSER_PASSWORD must be set together")
		case isPlaceholder(c.FirstSuperuserPassword):
			e.fail("FIRST_SUPERUSER_PASSWORD", "is a placeholder")
		case len([]rune(c.FirstSuperuserPassword)) < minProductionSecret:
			e.fail("FIRST_SUPERUSER_PASSWORD", "must be at least %d characters in production", minProductionSecret)
		case newPasswordProblem(c.FirstSuperuserPassword, c.FirstSuperuserEmail, nil) != "":
			e.fail("FIRST_SUPERUSER_PASSWORD", "%s", newPasswordProblem(c.FirstSuperuserPassword, c.FirstSuperuserEmail, nil))
		}
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			e.fail("CORS_ALLOWED_ORIGINS", "must list origins, not *, in production")
		}
	}
	// Recovery and verification mails must be able to leave, and to link
	// somewhere real.
	if c.SMTP.Host == "" {
		e.fail("SMTP_HOST", "is required in production (password recovery and verification are mailed)")
	}
	if c.MailFrom == nil && !e.set("MAIL_FROM") {
		e.fail("MAIL_FROM", "is required in production")
	}
	if c.FrontendURL == "" {
		e.fail("FRONTEND_URL", "is required in production (mailed links point there)")
	}
	if c.SMTP.Password != "" && isPlaceholder(c.SMTP.Password) {
		e.fail("SMTP_PASSWORD", "is a placeholder")
	}
	if c.SecretKey == nil && !e.set("SECRET_KEY") {
		e.fail("SECRET_KEY", "is required in production (at least 32 random bytes, base64 or hex: openssl rand -base64 32)")
	}
}
