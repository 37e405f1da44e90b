package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func envOf(kv ...string) lookupEnv {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return envMap(m)
}

func TestConfigDevelopmentNeedsNoVariables(t *testing.T) {
	cfg, err := loadConfig(envOf())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Env, "development"; got != want {
		t.Fatalf("Env=%q, want %q", got, want)
	}
	if cfg.Port != 8080 || cfg.DatabaseURL != devDatabaseURL || !cfg.DocsEnabled {
		t.Fatalf("dev defaults wrong: %+v", cfg)
	}
	if cfg.FirstSuperuserEmail != "admin@example.com" || cfg.FirstSuperuserPassword != "changethis" {
		t.Fatalf("dev superuser = %q/%q", cfg.FirstSuperuserEmail, cfg.FirstSuperuserPassword)
	}
	if cfg.MaxBodyBytes != 1<<20 || cfg.SessionTTL != 12*time.Hour || cfg.SessionIdle != 30*time.Minute || cfg.ShutdownDelay != 0 || cfg.ShutdownTimeout != 7*time.Second {
		t.Fatalf("contract defaults wrong: %+v", cfg)
	}
	if got, want := strings.Join(cfg.CORSOrigins, ","), "http://localhost:5173,http://127.0.0.1:5173,http://localhost:3000,http://127.0.0.1:3000"; got != want {
		t.Fatalf("CORSOrigins=%q, want the local frontend dev servers %q", got, want)
	}
	if got, want := cfg.Host, "127.0.0.1"; got != want {
		t.Fatalf("Host=%q, want %q", got, want)
	}
	rl := cfg.RateLimit
	if rl.AuthRequests != 100 || rl.AuthWindow != time.Minute || rl.LoginFailures != 10 || rl.LoginWindow != 15*time.Minute || rl.APIRequests != 600 || rl.MaxKeys != 100000 || rl.Store != "memory" || !rl.Enabled {
		t.Fatalf("rate-limit defaults wrong: %+v", rl)
	}
	if cfg.LogLevel != slog.LevelInfo {
		t.Fatalf("LogLevel=%v", cfg.LogLevel)
	}
	if got := cfg.MailFrom.String(); got != `"Backend (development)" <noreply@example.com>` {
		t.Fatalf("MailFrom=%s: the display name lost its words", got)
	}
}

func TestConfigBadValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  lookupEnv
		want string
	}{
		{"port not a number", envOf("PORT", "abc"), "PORT"},
		{"port out of range", envOf("PORT", "70000"), "PORT"},
		{"unknown log level", envOf("LOG_LEVEL", "loud"), "LOG_LEVEL"},
		{"negative duration", envOf("SESSION_TTL", "-1h"), "SESSION_TTL"},
		{"duration without unit", envOf("SHUTDOWN_DELAY", "5"), "SHUTDOWN_DELAY"},
		{"zero session ttl", envOf("SESSION_TTL", "0s"), "SESSION_TTL"},
		{"bad boolean", envOf("DOCS_ENABLED", "yes please"), "DOCS_ENABLED"},
		{"bad env", envOf("APP_ENV", "staging", "DATABASE_URL", "postgres://u:a-long-secret-pw@db/app"), "APP_ENV"},
		{"bad proxy", envOf("TRUSTED_PROXIES", "10.0.0.0/8,nginx"), "TRUSTED_PROXIES"},
		{"bad origin", envOf("CORS_ALLOWED_ORIGINS", "app.example.com"), "CORS_ALLOWED_ORIGINS"},
		{"bad store", envOf("RATE_LIMIT_STORE", "redis"), "RATE_LIMIT_STORE"},
		{"zero limit", envOf("RATE_LIMIT_AUTH_REQUESTS", "0"), "RATE_LIMIT_AUTH_REQUESTS"},
		{"tiny window", envOf("RATE_LIMIT_LOGIN_WINDOW", "10ms"), "RATE_LIMIT_LOGIN_WINDOW"},
		{"body too small", envOf("MAX_BODY_BYTES", "0"), "MAX_BODY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.env)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("err=%v, want a configError", err)
			}
			if !strings.Contains(err.Error(), tt.want+":") {
				t.Fatalf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func TestConfigProductionListsEveryProblemAtOnce(t *testing.T) {
	_, err := loadConfig(envOf(
		"APP_ENV", "production",
		"FIRST_SUPERUSER_EMAIL", "root@example.com",
		"FIRST_SUPERUSER_PASSWORD", "changethis",
		"CORS_ALLOWED_ORIGINS", "*",
		"PORT", "abc",
	))
	if err == nil {
		t.Fatal("production started with no database and placeholder secrets")
	}
	for _, want := range []string{"DATABASE_URL: is required", "FIRST_SUPERUSER_PASSWORD: is a placeholder", "CORS_ALLOWED_ORIGINS: must list origins", "PORT:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestConfigProductionRules(t *testing.T) {
	good := []string{"APP_ENV", "production", "DATABASE_URL", "postgres://app:Xk29-longer-secret@db:5432/app",
		"SMTP_HOST", "smtp.example.com", "MAIL_FROM", "App <noreply@example.com>", "FRONTEND_URL", "https://app.example.com",
		"SECRET_KEY", testSecretKey}
	with := func(kv ...string) lookupEnv { return envOf(append(append([]string{}, good...), kv...)...) }
	tests := []struct {
		name string
		env  lookupEnv
		want string // "" means it must start
	}{
		{"minimal good", with(), ""},
		{"docs explicitly asked for", with("DOCS_ENABLED", "true"), ""},
		{"superuser with a strong password", with("FIRST_SUPERUSER_EMAIL", "root@example.com", "FIRST_SUPERUSER_PASSWORD", "a-strong-passphrase"), ""},
		{"database password missing", envOf("APP_ENV", "production", "DATABASE_URL", "postgres://app@db/app"), "DATABASE_URL"},
		{"no SMTP host", with("SMTP_HOST", ""), "SMTP_HOST"},
		{"no sender", with("MAIL_FROM", ""), "MAIL_FROM"},
		{"no frontend", with("FRONTEND_URL", ""), "FRONTEND_URL"},
		{"bad SMTP_TLS", with("SMTP_TLS", "ssl"), "SMTP_TLS"},
		{"bad EMAIL_VERIFICATION", with("EMAIL_VERIFICATION", "maybe"), "EMAIL_VERIFICATION"},
		{"database password placeholder", envOf("APP_ENV", "production", "DATABASE_URL", "postgres://app:changethis@db/app"), "DATABASE_URL"},
		{"superuser password short", with("FIRST_SUPERUSER_EMAIL", "root@example.com", "FIRST_SUPERUSER_PASSWORD", "short-pw"), "FIRST_SUPERUSER_PASSWORD"},
		{"superuser password 'password'", with("FIRST_SUPERUSER_EMAIL", "root@example.com", "FIRST_SUPERUSER_PASSWORD", "password"), "FIRST_SUPERUSER_PASSWORD"},
		{"superuser password 'secret'", with("FIRST_SUPERUSER_EMAIL", "root@example.com", "FIRST_SUPERUSER_PASSWORD", "secret"), "FIRST_SUPERUSER_PASSWORD"},
		{"superuser email alone", with("FIRST_SUPERUSER_EMAIL", "root@example.com"), "FIRST_SUPERUSER_EMAIL"},
		{"cors star", with("CORS_ALLOWED_ORIGINS", "https://app.example.com,*"), "CORS_ALLOWED_ORIGINS"},
		{"no secret key", with("SECRET_KEY", ""), "SECRET_KEY"},
		{"secret key placeholder", with("SECRET_KEY", "changethis"), "SECRET_KEY"},
		{"secret key too short", with("SECRET_KEY", "c2hvcnQta2V5LW9mLTIwLWJ5dGVz"), "SECRET_KEY"},
		{"secret key not encoded", with("SECRET_KEY", "this is not hex nor base64, though long enough!"), "SECRET_KEY"},
		{"secret key as hex", with("SECRET_KEY", strings.Repeat("ab", 32)), ""},
		{"mail attempts zero", with("MAIL_MAX_ATTEMPTS", "0"), "MAIL_MAX_ATTEMPTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused a good production config: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want+":") {
				t.Fatalf("err=%v, want it to name %s", err, tt.want)
			}
		})
	}
	cfg, _ := loadConfig(with())
	if cfg.DocsEnabled || cfg.FirstSuperuserEmail != "" {
		t.Fatalf("production got development defaults: docs=%v superuser=%q", cfg.DocsEnabled, cfg.FirstSuperuserEmail)
	}
	cfg, _ = loadConfig(with("CORS_ALLOWED_ORIGINS", "", "SHUTDOWN_DELAY", "", "RATE_LIMIT_AUTH_REQUESTS", ""))
	if cfg.Host != "" || cfg.ShutdownDelay != 2*time.Second || cfg.RateLimit.AuthRequests != 10 || len(cfg.CORSOrigins) != 0 {
		t.Fatalf("production defaults: host %q (want every interface), delay %v (want 2s), auth %d (want 10), CORS %v (want none)",
			cfg.Host, cfg.ShutdownDelay, cfg.RateLimit.AuthRequests, cfg.CORSOrigins)
	}
}

// METRICS_ADDR: unset is the default for the environment; set and empty,
// or "off", turns the listener off, as the contract says; anything else
// must be host:port.
func TestConfigMetricsAddr(t *testing.T) {
	for _, c := range []struct {
		env  lookupEnv
		want string
	}{
		{envOf(), "127.0.0.1:9464"},
		{envOf("METRICS_ADDR", ""), ""},
		{envOf("METRICS_ADDR", "  "), ""},
		{envOf("METRICS_ADDR", "off"), ""},
		{envOf("METRICS_ADDR", ":9191"), ":9191"},
		{envOf("APP_ENV", "production", "DATABASE_URL", "postgres://app:Xk29-longer-secret@db:5432/app", "SMTP_HOST", "smtp.example.com",
			"MAIL_FROM", "App <noreply@example.com>", "FRONTEND_URL", "https://app.example.com", "SECRET_KEY", testSecretKey), ":9464"},
	} {
		cfg, err := loadConfig(c.env)
		if err != nil || cfg.MetricsAddr != c.want {
			t.Fatalf("metrics address %q (%v), want %q", cfg.MetricsAddr, err, c.want)
		}
	}
	if _, err := loadConfig(envOf("METRICS_ADDR", "9464")); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR:") {
		t.Fatalf("a port without a colon was taken: %v", err)
	}
}

// The start-up line names every setting config.go reads, secrets masked.
func TestConfigLogValueListsEverySetting(t *testing.T) {
	cfg, err := loadConfig(envOf())
	if err != nil {
		t.Fatal(err)
	}
	var buf logBuffer
	newLogger(&buf, slog.LevelInfo).Info("starting", "config", cfg)
	logged, _ := buf.lines(t)[0]["config"].(map[string]any)
	src := configSources(t)
	read := regexp.MustCompile(`(?:str|integer|duration|boolean|list|set|getenv)\("([A-Z][A-Z0-9_]+)"`).FindAllStringSubmatch(src, -1)
	for _, m := range read {
		name := strings.ToLower(m[1])
		_, plain := logged[name]
		_, masked := logged[name+"_set"]
		rl := strings.TrimPrefix(name, "rate_limit_")
		_, pair := logged["rate_limit_"+strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(rl, "_requests"), "_window"), "_failures")]
		if !plain && !masked && !pair {
			t.Errorf("%s is read by config.go but not in the start-up line: %v", m[1], logged)
		}
	}
}

func TestConfigLogValueMasksSecrets(t *testing.T) {
	cfg, err := loadConfig(envOf("DATABASE_URL", "postgres://app:Sup3r-Secret-Pw@db:5432/app?sslmode=disable", "FIRST_SUPERUSER_EMAIL", "root@example.com", "FIRST_SUPERUSER_PASSWORD", "Another-Secret-99"))
	if err != nil {
		t.Fatal(err)
	}
	var buf logBuffer
	newLogger(&buf, slog.LevelInfo).Info("starting", "config", cfg)
	out := buf.String()
	for _, secret := range []string{"Sup3r-Secret-Pw", "Another-Secret-99"} {
		if strings.Contains(out, secret) {
			t.Fatalf("config log shows a secret: %s", out)
		}
	}
	if !strings.Contains(out, "app:xxxxx@db:5432") {
		t.Fatalf("config log lacks the masked DSN: %s", out)
	}
	if got := redactDSN("host=db user=app password=hunter22 dbname=app"); strings.Contains(got, "hunter22") {
		t.Fatalf("key=value DSN not masked: %s", got)
	}
}

// testSecretKey is a SECRET_KEY for tests: 32 bytes, base64.
const testSecretKey = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs="

// Development without SECRET_KEY makes a fresh one per process and says
// so; a key that is set is used as given.
func TestConfigSecretKey(t *testing.T) {
	a, _ := loadConfig(envOf())
	b, _ := loadConfig(envOf())
	if !a.SecretKeyGenerated || len(a.SecretKey) != 32 || string(a.SecretKey) == string(b.SecretKey) {
		t.Fatalf("development keys: generated=%v len=%d, equal to the next process's: %v", a.SecretKeyGenerated, len(a.SecretKey), string(a.SecretKey) == string(b.SecretKey))
	}
	c, err := loadConfig(envOf("SECRET_KEY", testSecretKey))
	if err != nil || c.SecretKeyGenerated || len(c.SecretKey) != 32 || c.SecretKey[0] != 0xde {
		t.Fatalf("a set key: %v generated=%v %x", err, c.SecretKeyGenerated, c.SecretKey)
	}
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn})
	if len(rn.logs.linesWith(t, "msg", "SECRET_KEY is not set: development made a key for this process; mail it queued cannot be sent by another process or after a restart")) != 1 {
		t.Fatalf("development did not say it made a key:\n%s", rn.logs)
	}
}

// A NAME_FILE set on the wrong variable never shows the file's content:
// the error names the file's variable instead.
func TestConfigFileErrorsNeverQuoteTheFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "database_url")
	os.WriteFile(secret, []byte("postgres://app:Leaky-Secret-77@db/app\n"), 0o600)
	for _, name := range []string{"PORT", "LOG_LEVEL", "SESSION_TTL", "DOCS_ENABLED", "HOST", "FRONTEND_URL", "METRICS_ADDR", "PPROF_ADDR", "SMTP_TLS", "APP_ENV", "TRUSTED_PROXIES", "CORS_ALLOWED_ORIGINS", "MAIL_FROM", "SECRET_KEY"} {
		_, err := loadConfig(envOf(name+"_FILE", secret))
		if err == nil {
			t.Errorf("%s_FILE holding a DSN was taken", name)
			continue
		}
		if strings.Contains(err.Error(), "Leaky-Secret-77") || strings.Contains(err.Error(), "postgres://") {
			t.Errorf("%s_FILE: the error quotes the file: %v", name, err)
		}
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s_FILE: the error does not name %s: %v", name, name, err)
		}
	}
}

// configSources is the configuration's code: config.go and the files of
// the same stem (the env reader, the production rules).
func configSources(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob("config*.go")
	var src strings.Builder
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			b, _ := os.ReadFile(f)
			src.Write(b)
		}
	}
	if src.Len() == 0 {
		t.Fatal("no config*.go")
	}
	return src.String()
}
