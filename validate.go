package main

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// normalizeEmail trims and lower-cases, as the contract stores emails.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// emailProblem is "" for an addr-spec with a dotted domain of at most 254
// characters, all printable ASCII, else what is wrong with it. ASCII only
// (an internationalised domain in its xn-- form) means no look-alike
// (Cyrillic, fullwidth), combining (NFD) or invisible (zero-width)
// character can make a second account for what a person reads as the
// same address.
func emailProblem(email string) string {
	if email == "" {
		return "is required"
	}
	if len(email) > 254 {
		return "must be at most 254 characters"
	}
	for i := 0; i < len(email); i++ {
		if c := email[i]; c < 0x21 || c > 0x7e {
			return "must be printable ASCII (write an internationalised domain in its xn-- form)"
		}
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "must be an email address such as name@example.com"
	}
	at := strings.LastIndexByte(email, '@')
	domain := email[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "must be an email address such as name@example.com"
	}
	return ""
}

// passwordProblem is the one password rule, at registration, reset, change
// and login alike: 8 to 128 characters (not bytes), any Unicode but control
// characters (NUL included), so that what is accepted once can always be
// typed again.
func passwordProblem(pw string) string {
	if !utf8.ValidString(pw) {
		return "must be valid UTF-8"
	}
	if strings.IndexFunc(pw, unicode.IsControl) >= 0 {
		return "must not contain control characters"
	}
	if n := utf8.RuneCountInString(pw); n < 8 || n > 128 {
		return "must be 8 to 128 characters"
	}
	return ""
}

// problems collects field errors in the order they are found.
type problems []fieldError

func (p *problems) add(field, message string) {
	if message != "" {
		*p = append(*p, fieldError{Field: field, Message: message})
	}
}

// lengthProblem checks a string's length in characters, not bytes.
// PostgreSQL text cannot hold NUL, so it is refused here as a 422 rather
// than failing as a database error.
func lengthProblem(s string, min, max int) string {
	n := utf8.RuneCountInString(s)
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL characters"
	case n < min && min == 1:
		return "must not be empty"
	case n < min || n > max:
		if min == 0 {
			return "must be at most " + itoa(max) + " characters"
		}
		return "must be " + itoa(min) + " to " + itoa(max) + " characters"
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

// required names a field that is absent or null.
func required[T any](o opt[T]) string {
	if !o.Set || o.Null {
		return "is required"
	}
	return ""
}

// notNull names a field that is present but null where a value is needed.
func notNull[T any](o opt[T]) string {
	if o.Set && o.Null {
		return "must not be null"
	}
	return ""
}

// firstOf is the first problem found, or "".
func firstOf(msgs ...string) string {
	for _, m := range msgs {
		if m != "" {
			return m
		}
	}
	return ""
}

// fullNameProblem checks an optional full name (null clears it).
func fullNameProblem(o opt[*string]) string {
	if o.Set && o.V != nil {
		return lengthProblem(*o.V, 0, 255)
	}
	return ""
}

// requiredEmail and requiredPassword are a field that must be present and
// follow the one email or password rule; requiredToken a mailed token.
func requiredEmail(o opt[string]) string    { return firstOf(required(o), emailProblem(o.V)) }
func requiredPassword(o opt[string]) string { return firstOf(required(o), passwordProblem(o.V)) }
func requiredToken(o opt[string]) string    { return firstOf(required(o), lengthProblem(o.V, 1, 128)) }

// codeProblem checks a second-factor code: six digits, or a recovery code
// when recovery says one is accepted here.
func codeProblem(o opt[string], recovery bool) string {
	if p := required(o); p != "" {
		return p
	}
	if isTOTPCode(o.V) || (recovery && recoveryCodeKey(o.V) != "") {
		return ""
	}
	if recovery {
		return "must be the 6-digit code of your authenticator app, or a recovery code"
	}
	return "must be the 6-digit code of your authenticator app"
}
