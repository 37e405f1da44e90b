package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// config is every setting the service reads, parsed once at start.
type config struct {
	Env         string // development | production
	Host        string // the listen address; "" is every interface
	Port        int
	DatabaseURL string
	LogLevel    slog.Level
	DocsEnabled bool
	// ServeFrontend: development serves nginx/html at / itself, so the
	// links in mails open a working page without nginx.
	ServeFrontend bool
	CORSOrigins   []string
	TrustedProxy  []netip.Prefix
	MaxBodyBytes  int64

	SessionTTL      time.Duration
	SessionIdle     time.Duration
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration

	DBMaxOpenConns    int
	DBMaxIdleConns    int
	DBConnMaxLifetime time.Duration
	DBConnMaxIdleTime time.Duration

	FirstSuperuserEmail    string
	FirstSuperuserPassword string

	MetricsAddr  string // "" when off
	PprofEnabled bool
	PprofAddr    string // always a loopback address

	// SecretKey seals what must not be readable at rest (queued mails); the
	// database never holds it. Development makes one per process when it
	// is unset (SecretKeyGenerated).
	SecretKey          []byte
	SecretKeyGenerated bool

	SMTP              smtpConfig
	MailFrom          *mail.Address
	FrontendURL       string
	EmailVerification string // optional | required
	MailMaxAttempts   int
	MFARequired       string // off | superusers | all

	RateLimit rateLimitConfig
}

// smtpConfig is how mail leaves: SMTP_HOST, SMTP_PORT, SMTP_TLS
// (starttls, tls or none), SMTP_USERNAME and SMTP_PASSWORD (AUTH PLAIN).
type smtpConfig struct {
	Host, Username, Password, TLS string
	Port                          int
}

// sessionPolicy is when sessions end (ttl after creation, idle after their
// last use, whichever comes first) and what they may do: an account that
// must have a second factor (mfaRequired: off, superusers, all) and has
// none may use only the routes that let it enrol (enrolling).
type sessionPolicy struct {
	ttl, idle   time.Duration
	mfaRequired string
	enrolling   bool
}

// whileEnrolling is p for the routes an account may use before it enrols:
// its own enrolment, GET /users/me and logout.
func (p sessionPolicy) whileEnrolling() sessionPolicy {
	p.enrolling = true
	return p
}

// lastUsedGranularity is how stale last_used_at may get: a request writes
// it only when it is older, so an authenticated request stays one read.
const lastUsedGranularity = time.Minute

type rateLimitConfig struct {
	Enabled         bool
	Store           string // memory | postgres
	MaxKeys         int
	AuthRequests    int
	AuthWindow      time.Duration
	LoginFailures   int
	LoginWindow     time.Duration
	AccountFailures int
	AccountWindow   time.Duration
	APIRequests     int
	APIWindow       time.Duration
}

const (
	envDevelopment = "development"
	envProduction  = "production"

	devDatabaseURL       = "postgres://postgres@127.0.0.1:5432/app?sslmode=disable"
	devSuperuserEmail    = "admin@example.com"
	devSuperuserPassword = "changethis"
	minProductionSecret  = 12
	defaultMetricsPort   = "9464"
)

// devCORSOrigins are the usual local frontend dev servers (Vite, and
// Create React App / Next.js), by name and by address: a browser sends
// the origin as the page was opened.
var devCORSOrigins = []string{"http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:3000", "http://127.0.0.1:3000"}

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

// loadConfig reads the environment. Development runs with nothing set;
// production has no defaults for anything secret.
func loadConfig(lookup lookupEnv) (config, error) {
	e := &envReader{lookup: lookup}
	var c config

	// APP_ENV decides every default below: an unknown value is the only
	// problem worth reporting, since the rest would be judged by a guess.
	c.Env = e.str("APP_ENV", envDevelopment)
	if c.Env != envDevelopment && c.Env != envProduction {
		e.invalid("APP_ENV", c.Env, "is neither of the two accepted values, development and production")
		return c, &configError{problems: e.problems}
	}
	prod := c.Env == envProduction

	// Development listens on this machine only; a container must listen on
	// every interface.
	c.Host = e.str("HOST", byEnv(prod, "", "127.0.0.1"))
	if c.Host != "" && c.Host != "localhost" {
		if _, err := netip.ParseAddr(c.Host); err != nil {
			e.invalid("HOST", c.Host, "is not an IP address (or empty for every interface)")
		}
	}
	c.Port = e.integer("PORT", 8080, 0, 65535)
	c.DatabaseURL = e.str("DATABASE_URL", "")
	if c.DatabaseURL == "" && !prod {
		c.DatabaseURL = devDatabaseURL
	}
	if c.DatabaseURL != "" {
		e.databaseURL("DATABASE_URL", c.DatabaseURL)
	}
	if lvl := e.str("LOG_LEVEL", "info"); lvl != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			e.invalid("LOG_LEVEL", lvl, "is not debug, info, warn or error")
		}
	}
	c.DocsEnabled = e.boolean("DOCS_ENABLED", !prod)
	c.ServeFrontend = !prod
	c.CORSOrigins = e.list("CORS_ALLOWED_ORIGINS")
	if !prod && !e.set("CORS_ALLOWED_ORIGINS") {
		c.CORSOrigins = devCORSOrigins
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue // judged below, with the production rules
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			e.invalid("CORS_ALLOWED_ORIGINS", o, "is not an origin such as https://app.example.com")
		}
	}
	for _, p := range e.list("TRUSTED_PROXIES") {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				e.invalid("TRUSTED_PROXIES", p, "is not an IP address or CIDR range")
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.TrustedProxy = append(c.TrustedProxy, prefix.Masked())
	}
	c.MaxBodyBytes = int64(e.integer("MAX_BODY_BYTES", 1<<20, 1, 1<<30))
	// ASVS L2 / NIST AAL2: an absolute lifetime and an idle timeout.
	c.SessionTTL = e.duration("SESSION_TTL", 12*time.Hour)
	if c.SessionTTL == 0 {
		e.fail("SESSION_TTL", "must be longer than zero")
	}
	c.SessionIdle = e.duration("SESSION_IDLE_TIMEOUT", 30*time.Minute)
	if c.SessionIdle < 2*lastUsedGranularity {
		e.fail("SESSION_IDLE_TIMEOUT", "must be at least %s (last use is recorded once a minute)", 2*lastUsedGranularity)
	}
	c.ShutdownDelay = e.duration("SHUTDOWN_DELAY", byEnv(prod, 2*time.Second, 0)) // development has no load balancer to tell
	c.ShutdownTimeout = e.duration("SHUTDOWN_TIMEOUT", 7*time.Second)
	c.DBMaxOpenConns = e.integer("DB_MAX_OPEN_CONNS", 20, 1, 1000)
	// Idle equal to open: a pool that closes what comes back idle under
	// load reopens it a moment later (a backend start, authentication and
	// TLS each time).
	c.DBMaxIdleConns = e.integer("DB_MAX_IDLE_CONNS", c.DBMaxOpenConns, 0, 1000)
	if c.DBMaxIdleConns > c.DBMaxOpenConns {
		e.fail("DB_MAX_IDLE_CONNS", "%d is above DB_MAX_OPEN_CONNS (%d): the pool would close the extra ones anyway; set it at most equal", c.DBMaxIdleConns, c.DBMaxOpenConns)
	}
	c.DBConnMaxLifetime = e.duration("DB_CONN_MAX_LIFETIME", time.Hour)
	c.DBConnMaxIdleTime = e.duration("DB_CONN_MAX_IDLE_TIME", 30*time.Minute)

	c.FirstSuperuserEmail = e.str("FIRST_SUPERUSER_EMAIL", "")
	c.FirstSuperuserPassword = e.getenv("FIRST_SUPERUSER_PASSWORD")
	if !prod && c.FirstSuperuserEmail == "" && c.FirstSuperuserPassword == "" {
		c.FirstSuperuserEmail, c.FirstSuperuserPassword = devSuperuserEmail, devSuperuserPassword
	}

	// Set and empty turns the listener off, as does "off" (for tools that
	// drop empty variables); unset is the default.
	// Not 9090, which is Prometheus's own port: a Prometheus beside the
	// service would take it first. 9464 is the usual exporter port.
	c.MetricsAddr = e.str("METRICS_ADDR", byEnv(prod, ":"+defaultMetricsPort, "127.0.0.1:"+defaultMetricsPort))
	if _, set := e.lookup("METRICS_ADDR"); (set && !e.set("METRICS_ADDR")) || c.MetricsAddr == "off" {
		c.MetricsAddr = ""
	} else if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		e.invalid("METRICS_ADDR", c.MetricsAddr, "is not host:port (such as :%s), empty or off", defaultMetricsPort)
	}
	// pprof shows memory and can stall the process: it is served on a
	// loopback address only, reached by port-forward or exec, never from
	// the network.
	c.PprofEnabled = e.boolean("PPROF_ENABLED", false)
	c.PprofAddr = e.str("PPROF_ADDR", "127.0.0.1:6060")
	if host, _, err := net.SplitHostPort(c.PprofAddr); err != nil || !isLoopback(host) {
		e.invalid("PPROF_ADDR", c.PprofAddr, "is not a loopback host:port such as 127.0.0.1:6060")
	}
	c.SecretKey = e.secretKey("SECRET_KEY", prod)
	if c.SecretKey == nil && !prod {
		c.SecretKey, c.SecretKeyGenerated = make([]byte, 32), true
		rand.Read(c.SecretKey)
	}

	c.SMTP.Host = e.str("SMTP_HOST", "")
	c.SMTP.Port = e.integer("SMTP_PORT", 587, 1, 65535)
	c.SMTP.Username = e.str("SMTP_USERNAME", "")
	c.SMTP.Password = e.getenv("SMTP_PASSWORD")
	c.SMTP.TLS = e.str("SMTP_TLS", "starttls")
	if c.SMTP.TLS != "starttls" && c.SMTP.TLS != "tls" && c.SMTP.TLS != "none" {
		e.invalid("SMTP_TLS", c.SMTP.TLS, "is not starttls, tls or none")
	}
	from := e.str("MAIL_FROM", "")
	if from == "" && !prod {
		from = `"Backend (development)" <noreply@example.com>` // quoted: unquoted parentheses are a comment, dropped
	}
	if from != "" {
		a, err := mail.ParseAddress(from)
		if err != nil || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@')+1:], ".") {
			e.invalid("MAIL_FROM", from, "is not an address such as \"App <noreply@example.com>\"")
		} else {
			c.MailFrom = a
		}
	}
	c.FrontendURL = e.str("FRONTEND_URL", "")
	if c.FrontendURL == "" && !prod {
		// Development serves the frontend itself: links point back here
		// (at the loopback when HOST is every interface, or is refused).
		host := c.Host
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			host = "127.0.0.1"
		}
		c.FrontendURL = "http://" + net.JoinHostPort(host, strconv.Itoa(c.Port))
	}
	if c.FrontendURL != "" {
		if u, err := url.Parse(c.FrontendURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			e.invalid("FRONTEND_URL", c.FrontendURL, "is not a URL such as https://app.example.com")
		}
	}
	c.MailMaxAttempts = e.integer("MAIL_MAX_ATTEMPTS", 10, 1, 1000)
	c.MFARequired = e.str("MFA_REQUIRED", "off")
	if c.MFARequired != "off" && c.MFARequired != "superusers" && c.MFARequired != "all" {
		e.invalid("MFA_REQUIRED", c.MFARequired, "is not off, superusers or all")
	}
	c.EmailVerification = e.str("EMAIL_VERIFICATION", "optional")
	if c.EmailVerification != "optional" && c.EmailVerification != "required" {
		e.invalid("EMAIL_VERIFICATION", c.EmailVerification, "is not optional or required")
	}

	rl := &c.RateLimit
	rl.Enabled = e.boolean("RATE_LIMIT_ENABLED", true)
	rl.Store = e.str("RATE_LIMIT_STORE", "memory")
	if rl.Store != "memory" && rl.Store != "postgres" {
		e.invalid("RATE_LIMIT_STORE", rl.Store, "is not memory or postgres")
	}
	rl.MaxKeys = e.integer("RATE_LIMIT_MAX_KEYS", 100_000, 1, 100_000_000)
	// Development's budget does not stop a person exploring the API.
	rl.AuthRequests = e.integer("RATE_LIMIT_AUTH_REQUESTS", byEnv(prod, 10, 100), 1, 1_000_000)
	rl.AuthWindow = e.duration("RATE_LIMIT_AUTH_WINDOW", time.Minute)
	rl.LoginFailures = e.integer("RATE_LIMIT_LOGIN_FAILURES", 10, 1, 1_000_000)
	rl.LoginWindow = e.duration("RATE_LIMIT_LOGIN_WINDOW", 15*time.Minute)
	rl.AccountFailures = e.integer("RATE_LIMIT_ACCOUNT_FAILURES", 100, 1, 1_000_000)
	rl.AccountWindow = e.duration("RATE_LIMIT_ACCOUNT_WINDOW", time.Hour)
	rl.APIRequests = e.integer("RATE_LIMIT_API_REQUESTS", 600, 1, 100_000_000)
	rl.APIWindow = e.duration("RATE_LIMIT_API_WINDOW", time.Minute)
	for _, w := range []struct {
		name string
		d    time.Duration
	}{{"RATE_LIMIT_AUTH_WINDOW", rl.AuthWindow}, {"RATE_LIMIT_LOGIN_WINDOW", rl.LoginWindow}, {"RATE_LIMIT_ACCOUNT_WINDOW", rl.AccountWindow}, {"RATE_LIMIT_API_WINDOW", rl.APIWindow}} {
		if w.d < time.Second {
			e.fail(w.name, "must be at least 1s")
		}
	}

	if prod {
		checkProduction(e, &c)
	}
	if len(e.problems) > 0 {
		return c, &configError{problems: e.problems}
	}
	return c, nil
}

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

// isLoopback reports whether host (an address or "localhost") is this
// machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func mailFromString(a *mail.Address) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// byEnv is a default that differs between production and development, so
// each variable is read once.
func byEnv[T any](prod bool, production, development T) T {
	if prod {
		return production
	}
	return development
}

// sessions is the session policy the config sets.
func (c config) sessions() sessionPolicy {
	return sessionPolicy{ttl: c.SessionTTL, idle: c.SessionIdle, mfaRequired: c.MFARequired}
}

// LogValue prints the config with secrets masked, so the start-up line can
// be pasted into a ticket.
func (c config) LogValue() slog.Value {
	origins := strings.Join(c.CORSOrigins, ",")
	proxies := make([]string, len(c.TrustedProxy))
	for i, p := range c.TrustedProxy {
		proxies[i] = p.String()
	}
	return slog.GroupValue(
		slog.String("app_env", c.Env),
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("database_url", redactDSN(c.DatabaseURL)),
		slog.String("log_level", c.LogLevel.String()),
		slog.Bool("docs_enabled", c.DocsEnabled),
		slog.Bool("serve_frontend", c.ServeFrontend),
		slog.String("cors_allowed_origins", origins),
		slog.String("trusted_proxies", strings.Join(proxies, ",")),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.String("session_ttl", c.SessionTTL.String()),
		slog.String("session_idle_timeout", c.SessionIdle.String()),
		slog.String("shutdown_delay", c.ShutdownDelay.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.Int("db_max_open_conns", c.DBMaxOpenConns),
		slog.Int("db_max_idle_conns", c.DBMaxIdleConns),
		slog.String("db_conn_max_lifetime", c.DBConnMaxLifetime.String()),
		slog.String("db_conn_max_idle_time", c.DBConnMaxIdleTime.String()),
		slog.String("first_superuser_email", c.FirstSuperuserEmail),
		slog.Bool("first_superuser_password_set", c.FirstSuperuserPassword != ""),
		slog.String("smtp_host", c.SMTP.Host),
		slog.Int("smtp_port", c.SMTP.Port),
		slog.String("smtp_tls", c.SMTP.TLS),
		slog.String("smtp_username", c.SMTP.Username),
		slog.Bool("smtp_password_set", c.SMTP.Password != ""),
		slog.String("mail_from", mailFromString(c.MailFrom)),
		slog.String("frontend_url", c.FrontendURL),
		slog.String("email_verification", c.EmailVerification),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Bool("pprof_enabled", c.PprofEnabled),
		slog.String("pprof_addr", c.PprofAddr),
		slog.Bool("secret_key_set", !c.SecretKeyGenerated),
		slog.Int("mail_max_attempts", c.MailMaxAttempts),
		slog.String("mfa_required", c.MFARequired),
		slog.Bool("rate_limit_enabled", c.RateLimit.Enabled),
		slog.String("rate_limit_store", c.RateLimit.Store),
		slog.Int("rate_limit_max_keys", c.RateLimit.MaxKeys),
		slog.String("rate_limit_auth", strconv.Itoa(c.RateLimit.AuthRequests)+"/"+c.RateLimit.AuthWindow.String()),
		slog.String("rate_limit_login", strconv.Itoa(c.RateLimit.LoginFailures)+"/"+c.RateLimit.LoginWindow.String()),
		slog.String("rate_limit_account", strconv.Itoa(c.RateLimit.AccountFailures)+"/"+c.RateLimit.AccountWindow.String()),
		slog.String("rate_limit_api", strconv.Itoa(c.RateLimit.APIRequests)+"/"+c.RateLimit.APIWindow.String()),
	)
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
