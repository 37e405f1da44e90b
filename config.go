package main

import (
	"crypto/rand"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	// DBPooler says what stands between the pool and PostgreSQL: off (the
	// server itself) or transaction (a pooler such as PgBouncer in
	// transaction mode: no statement may outlive its transaction).
	DBPooler string
	// MigrationDatabaseURL is where migrations run when it is set: straight
	// to PostgreSQL, past a pooler.
	MigrationDatabaseURL string

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
	WebAuthnRPID      string // the passkeys' relying party id; empty: FRONTEND_URL's host
	EmailVerification string // optional | required
	MailMaxAttempts   int
	MFARequired       string // off | superusers | all
	IfMatchRequired   bool   // PATCH and DELETE of items and users need If-Match (428 without)

	RateLimit rateLimitConfig
}

// smtpConfig is how mail leaves: SMTP_HOST, SMTP_PORT, SMTP_TLS
// (starttls, tls or none), SMTP_USERNAME and SMTP_PASSWORD (AUTH PLAIN).
type smtpConfig struct {
	Host, Username, Password, TLS string
	Port                          int
}

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

// What stands between the pool and PostgreSQL (DB_POOLER).
const (
	poolerOff         = "off"
	poolerTransaction = "transaction"
)

// devCORSOrigins are the usual local frontend dev servers (Vite, and
// Create React App / Next.js), by name and by address: a browser sends
// the origin as the page was opened.
var devCORSOrigins = []string{"http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:3000", "http://127.0.0.1:3000"}

// loadConfig reads the environment, one section after another (later
// sections may use what earlier ones read). Development runs with nothing
// set; production has no defaults for anything secret, and its own rules
// (checkProduction).
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
	for _, load := range []func(e *envReader, c *config, prod bool){
		loadServer, loadEdge, loadDatabase, loadSessions, loadListeners, loadAccounts, loadMail, loadRateLimits,
	} {
		load(e, &c, prod)
	}
	if prod {
		checkProduction(e, &c)
	}
	if len(e.problems) > 0 {
		return c, &configError{problems: e.problems}
	}
	return c, nil
}

// loadServer reads where the API listens and how it logs and stops.
func loadServer(e *envReader, c *config, prod bool) {
	// Development listens on this machine only; a container must listen on
	// every interface.
	c.Host = e.str("HOST", byEnv(prod, "", "127.0.0.1"))
	if c.Host != "" && c.Host != "localhost" {
		if _, err := netip.ParseAddr(c.Host); err != nil {
			e.invalid("HOST", c.Host, "is not an IP address (or empty for every interface)")
		}
	}
	c.Port = e.integer("PORT", 8080, 0, 65535)
	if lvl := e.str("LOG_LEVEL", "info"); lvl != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			e.invalid("LOG_LEVEL", lvl, "is not debug, info, warn or error")
		}
	}
	c.DocsEnabled = e.boolean("DOCS_ENABLED", !prod)
	c.ServeFrontend = !prod
	c.MaxBodyBytes = int64(e.integer("MAX_BODY_BYTES", 1<<20, 1, 1<<30))
	c.ShutdownDelay = e.duration("SHUTDOWN_DELAY", byEnv(prod, 2*time.Second, 0)) // development has no load balancer to tell
	c.ShutdownTimeout = e.duration("SHUTDOWN_TIMEOUT", 7*time.Second)
}

// loadEdge reads who may call from a browser, and which proxies are
// believed about the client's address.
func loadEdge(e *envReader, c *config, prod bool) {
	c.CORSOrigins = e.list("CORS_ALLOWED_ORIGINS")
	if !prod && !e.set("CORS_ALLOWED_ORIGINS") {
		c.CORSOrigins = devCORSOrigins
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue // judged with the production rules
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
}

// loadDatabase reads the database's URL and the pool's sizes.
func loadDatabase(e *envReader, c *config, prod bool) {
	c.DatabaseURL = e.str("DATABASE_URL", "")
	if c.DatabaseURL == "" && !prod {
		c.DatabaseURL = devDatabaseURL
	}
	if c.DatabaseURL != "" {
		e.databaseURL("DATABASE_URL", c.DatabaseURL)
	}
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
	c.DBPooler = e.str("DB_POOLER", poolerOff)
	if c.DBPooler != poolerOff && c.DBPooler != poolerTransaction {
		e.invalid("DB_POOLER", c.DBPooler, "is not off or transaction")
	}
	if c.DBPooler == poolerTransaction && strings.Contains(c.DatabaseURL, "plan_cache_mode") {
		e.fail("DATABASE_URL", "sets plan_cache_mode, a startup parameter a transaction pooler refuses (DB_POOLER=transaction); take it out")
	}
	c.MigrationDatabaseURL = e.str("MIGRATION_DATABASE_URL", "")
	if c.MigrationDatabaseURL != "" {
		e.databaseURL("MIGRATION_DATABASE_URL", c.MigrationDatabaseURL)
	}
}

// loadSessions reads when sessions end: ASVS L2 / NIST AAL2, an absolute
// lifetime and an idle timeout.
func loadSessions(e *envReader, c *config, _ bool) {
	c.SessionTTL = e.duration("SESSION_TTL", 12*time.Hour)
	if c.SessionTTL == 0 {
		e.fail("SESSION_TTL", "must be longer than zero")
	}
	c.SessionIdle = e.duration("SESSION_IDLE_TIMEOUT", 30*time.Minute)
	if c.SessionIdle < 2*lastUsedGranularity {
		e.fail("SESSION_IDLE_TIMEOUT", "must be at least %s (last use is recorded once a minute)", 2*lastUsedGranularity)
	}
}

// loadListeners reads the metrics and pprof listeners.
func loadListeners(e *envReader, c *config, prod bool) {
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
}

// loadAccounts reads the first superuser, the sealing key, and what an
// account needs to sign in: a second factor, a verified email.
func loadAccounts(e *envReader, c *config, prod bool) {
	c.FirstSuperuserEmail = e.str("FIRST_SUPERUSER_EMAIL", "")
	c.FirstSuperuserPassword = e.getenv("FIRST_SUPERUSER_PASSWORD")
	if !prod && c.FirstSuperuserEmail == "" && c.FirstSuperuserPassword == "" {
		c.FirstSuperuserEmail, c.FirstSuperuserPassword = devSuperuserEmail, devSuperuserPassword
	}
	c.SecretKey = e.secretKey("SECRET_KEY", prod)
	if c.SecretKey == nil && !prod {
		c.SecretKey, c.SecretKeyGenerated = make([]byte, 32), true
		rand.Read(c.SecretKey)
	}
	c.IfMatchRequired = e.boolean("IF_MATCH_REQUIRED", false)
	c.MFARequired = e.str("MFA_REQUIRED", "off")
	if c.MFARequired != "off" && c.MFARequired != "superusers" && c.MFARequired != "all" {
		e.invalid("MFA_REQUIRED", c.MFARequired, "is not off, superusers or all")
	}
	c.EmailVerification = e.str("EMAIL_VERIFICATION", "optional")
	if c.EmailVerification != "optional" && c.EmailVerification != "required" {
		e.invalid("EMAIL_VERIFICATION", c.EmailVerification, "is not optional or required")
	}
}

// loadMail reads how mail leaves and where its links point.
func loadMail(e *envReader, c *config, prod bool) {
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
	// Passkeys are bound to a domain: FRONTEND_URL's host, or a parent
	// domain of it (WEBAUTHN_RP_ID), so they work on every subdomain.
	c.WebAuthnRPID = strings.ToLower(e.str("WEBAUTHN_RP_ID", ""))
	if c.WebAuthnRPID != "" {
		host := ""
		if u, err := url.Parse(c.FrontendURL); err == nil {
			host = u.Hostname()
		}
		if _, err := netip.ParseAddr(c.WebAuthnRPID); err == nil || strings.ContainsAny(c.WebAuthnRPID, ":/ ") ||
			(host != c.WebAuthnRPID && !strings.HasSuffix(host, "."+c.WebAuthnRPID)) {
			e.invalid("WEBAUTHN_RP_ID", c.WebAuthnRPID, "is not FRONTEND_URL's host nor a parent domain of it")
		}
	}
}

// loadRateLimits reads the budgets: per client address, and per account
// for password failures.
func loadRateLimits(e *envReader, c *config, prod bool) {
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
		slog.String("db_pooler", c.DBPooler),
		slog.String("migration_database_url", redactDSN(c.MigrationDatabaseURL)),
		slog.String("first_superuser_email", c.FirstSuperuserEmail),
		slog.Bool("first_superuser_password_set", c.FirstSuperuserPassword != ""),
		slog.String("smtp_host", c.SMTP.Host),
		slog.Int("smtp_port", c.SMTP.Port),
		slog.String("smtp_tls", c.SMTP.TLS),
		slog.String("smtp_username", c.SMTP.Username),
		slog.Bool("smtp_password_set", c.SMTP.Password != ""),
		slog.String("mail_from", mailFromString(c.MailFrom)),
		slog.String("frontend_url", c.FrontendURL),
		slog.String("webauthn_rp_id", c.WebAuthnRPID),
		slog.String("email_verification", c.EmailVerification),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Bool("pprof_enabled", c.PprofEnabled),
		slog.String("pprof_addr", c.PprofAddr),
		slog.Bool("secret_key_set", !c.SecretKeyGenerated),
		slog.Int("mail_max_attempts", c.MailMaxAttempts),
		slog.String("mfa_required", c.MFARequired),
		slog.Bool("if_match_required", c.IfMatchRequired),
		slog.Bool("rate_limit_enabled", c.RateLimit.Enabled),
		slog.String("rate_limit_store", c.RateLimit.Store),
		slog.Int("rate_limit_max_keys", c.RateLimit.MaxKeys),
		slog.String("rate_limit_auth", strconv.Itoa(c.RateLimit.AuthRequests)+"/"+c.RateLimit.AuthWindow.String()),
		slog.String("rate_limit_login", strconv.Itoa(c.RateLimit.LoginFailures)+"/"+c.RateLimit.LoginWindow.String()),
		slog.String("rate_limit_account", strconv.Itoa(c.RateLimit.AccountFailures)+"/"+c.RateLimit.AccountWindow.String()),
		slog.String("rate_limit_api", strconv.Itoa(c.RateLimit.APIRequests)+"/"+c.RateLimit.APIWindow.String()),
	)
}

// sessions is the session policy the config sets.
func (c config) sessions() sessionPolicy {
	return sessionPolicy{ttl: c.SessionTTL, idle: c.SessionIdle, mfaRequired: c.MFARequired}
}
