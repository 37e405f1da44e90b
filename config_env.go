package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reading the environment: every variable as NAME or NAME_FILE, typed, each
// problem remembered so the start reports them all at once.

// configError lists every problem found, so an operator fixes them in one go.
type configError struct{ problems []string }

func (e *configError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.problems, "\n  - ")
}

// envReader parses variables and remembers every problem instead of stopping
// at the first one. Any variable NAME may instead be given as NAME_FILE, the
// path of a file holding the value (Docker and Kubernetes secrets).
type envReader struct {
	lookup   lookupEnv
	problems []string
	fromFile map[string]bool // names whose value came from NAME_FILE
}

// lookupEnv is os.LookupEnv, or a test's map: a variable's value and
// whether it is set at all (METRICS_ADDR tells set-but-empty from unset).
type lookupEnv func(string) (string, bool)

func (e *envReader) environ(name string) string {
	v, _ := e.lookup(name)
	return v
}

// getenv is NAME's value, or the content of the file NAME_FILE names (its
// one trailing newline dropped). Both set is an error. The content is never
// logged, not even in the error.
func (e *envReader) getenv(name string) string {
	v, path := e.environ(name), strings.TrimSpace(e.environ(name+"_FILE"))
	if path == "" {
		return v
	}
	if v != "" {
		e.fail(name+"_FILE", "and %s are both set; set one", name)
		return v
	}
	b, err := os.ReadFile(path)
	if err != nil {
		e.fail(name+"_FILE", "cannot read %s: %v", path, errors.Unwrap(err))
		return ""
	}
	if e.fromFile == nil {
		e.fromFile = map[string]bool{}
	}
	e.fromFile[name] = true
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r")
}

// invalid reports a value of name that does not parse. The value is
// quoted, unless it came from a file: a secret file named on the wrong
// variable must not end up in an error message or a log.
func (e *envReader) invalid(name, value, format string, args ...any) {
	shown := strconv.Quote(value)
	if e.fromFile[name] {
		shown = "the content of " + name + "_FILE"
	}
	e.fail(name, "%s %s", shown, fmt.Sprintf(format, args...))
}

func (e *envReader) fail(name, format string, args ...any) {
	p := name + ": " + fmt.Sprintf(format, args...)
	if !slices.Contains(e.problems, p) { // a variable read twice is reported once
		e.problems = append(e.problems, p)
	}
}

func (e *envReader) str(name, def string) string {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

func (e *envReader) set(name string) bool { return strings.TrimSpace(e.getenv(name)) != "" }

func (e *envReader) integer(name string, def, min, max int) int {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.invalid(name, v, "is not a whole number from %d to %d", min, max)
		return def
	}
	return n
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.invalid(name, v, "is not a non-negative duration such as 90s, 15m or 168h")
		return def
	}
	return d
}

func (e *envReader) boolean(name string, def bool) bool {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.invalid(name, v, "is not true or false")
		return def
	}
	return b
}

func (e *envReader) list(name string) []string {
	var out []string
	for _, part := range strings.Split(e.getenv(name), ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// minSecretKeyBytes is AES-256's key size: SECRET_KEY must hold at least
// that much randomness.
const minSecretKeyBytes = 32

// secretKey reads SECRET_KEY, at least 32 bytes written as hex or base64.
// Unset is nil; production requires it (checkProduction), development makes
// one per process.
func (e *envReader) secretKey(name string, prod bool) []byte {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return nil
	}
	if isPlaceholder(v) {
		e.fail(name, "is a placeholder; make one with: openssl rand -base64 32")
		return nil
	}
	for _, decode := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if key, err := decode(v); err == nil && len(key) >= minSecretKeyBytes {
			return key
		}
	}
	e.fail(name, "must be at least %d random bytes written as hex or base64 (openssl rand -base64 32)", minSecretKeyBytes)
	return nil
}

// databaseURL checks that DATABASE_URL is a PostgreSQL URL the driver can
// use, so a typo stops the start instead of a retry loop; an error quotes
// only what was written, its password masked.
func (e *envReader) databaseURL(name, value string) {
	shown := redactDSN(value)
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || (u.Host == "" && u.Query().Get("host") == "") {
		e.invalid(name, shown, "is not a URL such as postgres://user:password@host:5432/dbname?sslmode=disable")
		return
	}
	if _, err := pgconn.ParseConfig(value); err != nil {
		// The driver's reason follows its own (masked) copy of the URL.
		_, why, _ := strings.Cut(err.Error(), "`: ")
		e.invalid(name, shown, "is not a usable PostgreSQL URL: %s", why)
	}
}

// redactDSN hides the password of a database URL (both URL and key=value forms).
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// Not a URL Go can parse (a typo): mask what looks like a URL's
	// password, then a key=value password.
	dsn = urlPassword.ReplaceAllString(dsn, "${1}xxxxx@")
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if strings.HasPrefix(strings.ToLower(f), "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// urlPassword is the password of a "//user:password@" in a string that does
// not parse as a URL.
var urlPassword = regexp.MustCompile(`(//[^/:@\s]*:)[^@\s]*@`)

// placeholders are values an example file or a tutorial ships with; production
// refuses them as secrets so that a copied example cannot go live by accident.
var placeholders = []string{"changethis", "changeme", "change-me", "secret", "password", "example", "placeholder", "postgres", "admin"}

func isPlaceholder(s string) bool {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, p := range placeholders {
		if l == p || (len(p) > 8 && strings.Contains(l, p)) {
			return true
		}
	}
	return false
}
