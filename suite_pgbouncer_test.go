package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The service behind Debian's pgbouncer in pool_mode = transaction, as
// "Past one database's connection budget" promises: three replicas on a
// pooler that lends each transaction one of 5 server connections.

// pgBouncer is a running pgbouncer in front of the local PostgreSQL.
type pgBouncer struct {
	port int
	logs *logBuffer
}

// startPgBouncer runs pgbouncer in transaction mode with default_pool_size
// 5 and the shipped configuration's connect_query (ini lines in extra are
// added to its [pgbouncer] section), trusting clients as the local
// PostgreSQL does.
func startPgBouncer(t *testing.T, extra ...string) *pgBouncer {
	t.Helper()
	pg, _ := url.Parse(adminDSN())
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s connect_query='SET plan_cache_mode = force_generic_plan'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = USERLIST
admin_users = postgres
pool_mode = transaction
default_pool_size = 5
max_client_conn = 500
logfile =
pidfile =
%s
`, pg.Hostname(), pg.Port(), port, strings.Join(extra, "\n"))
	return runPgBouncer(t, port, ini, `"postgres" ""`)
}

// runPgBouncer runs Debian's pgbouncer with the configuration ini (its
// auth_file written USERLIST, for userlist) until the test ends.
func runPgBouncer(t *testing.T, port int, ini, userlist string) *pgBouncer {
	t.Helper()
	bin := needTool(t, "pgbouncer")
	// Not t.TempDir: pgbouncer drops root for the postgres user, which
	// must read its files.
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	p := &pgBouncer{port: port, logs: &logBuffer{}}
	ini = strings.ReplaceAll(ini, "USERLIST", filepath.Join(dir, "userlist.txt"))
	os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(userlist+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644)
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres"}, args...) // it refuses to run as root
	}
	startDaemon(t, "pgbouncer", exec.Command(bin, args...), p.logs)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))); err == nil {
			c.Close()
			return p
		}
		if i > 100 {
			t.Fatalf("pgbouncer did not start:\n%s", p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dsn is the direct DSN of a database, through the pooler.
func (p *pgBouncer) dsn(direct string) string {
	u, _ := url.Parse(direct)
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
	return u.String()
}

// pools sums SHOW POOLS for the database db: its server connections
// (active, idle, used, tested, logging in) and its clients (active,
// waiting).
func (p *pgBouncer) pools(t *testing.T, db string) (servers, clients int) {
	t.Helper()
	// The admin console speaks the simple protocol only.
	admin, err := sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pgbouncer?sslmode=disable&default_query_exec_mode=simple_protocol", p.port))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	rows, err := admin.Query("SHOW POOLS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		rows.Scan(ptrs...)
		row := map[string]int{}
		for i, c := range cols {
			row[c], _ = strconv.Atoi(vals[i].String)
		}
		if vals[0].String != db {
			continue
		}
		servers += row["sv_active"] + row["sv_idle"] + row["sv_used"] + row["sv_tested"] + row["sv_login"]
		clients += row["cl_active"] + row["cl_waiting"]
	}
	return servers, clients
}

// databaseName is the database a DSN names.
func databaseName(dsn string) string {
	u, _ := url.Parse(dsn)
	return strings.TrimPrefix(u.Path, "/")
}

// With the default settings the service cannot even start behind a
// transaction pooler: pgx sends plan_cache_mode at startup, which
// pgbouncer refuses. DB_POOLER=transaction sends nothing of the kind.
// And were the pooler told to ignore that parameter, the default pool's
// prepared statements would meet other clients' server connections.
func TestDBPoolerIsWhatAPoolerNeeds(t *testing.T) {
	pgb := startPgBouncer(t)
	_, direct := migratedDB(t)
	off := startBinary(t, "DATABASE_URL="+pgb.dsn(direct), "SHUTDOWN_DELAY=0s")
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(off.logs.String(), "unsupported startup parameter: plan_cache_mode") {
		if time.Now().After(deadline) {
			t.Fatalf("the default settings behind pgbouncer did not fail as expected:\n%s", off.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := doRequest(t, off.url(), req{method: "GET", path: "/api/v1/health"}); r.status != 503 {
		t.Fatalf("health behind a refusing pooler: %d", r.status)
	}
	on := startBinary(t, "DATABASE_URL="+pgb.dsn(direct), "DB_POOLER=transaction", "SHUTDOWN_DELAY=0s")
	waitReady(t, on.url())

	lenient := startPgBouncer(t, "ignore_startup_parameters = plan_cache_mode")
	failures := func(pooler string) (n int, codes map[string]bool) {
		db, err := openDB(config{DatabaseURL: lenient.dsn(direct), DBPooler: pooler, DBMaxOpenConns: 16, DBMaxIdleConns: 16, DBConnMaxLifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		codes = map[string]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := range 25 {
					var k int
					err := db.QueryRow(`SELECT count(*) FROM users WHERE email = $1`, fmt.Sprintf("u%d-%d@example.com", w, i)).Scan(&k)
					if err != nil {
						mu.Lock()
						n++
						codes[pgCode(err)] = true
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return n, codes
	}
	n, codes := failures(poolerOff)
	t.Logf("the default pool behind a transaction pooler: %d of 400 statements failed %v", n, codes)
	if n == 0 || !(codes["42P05"] || codes["26000"]) {
		t.Errorf("the default pool behind a transaction pooler: %d of 400 statements failed (%v); want prepared statements meeting the wrong server (42P05, 26000)", n, codes)
	}
	if n, codes := failures(poolerTransaction); n != 0 {
		t.Errorf("DB_POOLER=transaction: %d of 400 statements failed: %v", n, codes)
	}
}

// pgCode is a PostgreSQL error's SQLSTATE, or the error's text.
func pgCode(err error) string {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		return pgErr.SQLState()
	}
	return err.Error()
}

// The authorization matrix and the bad-input suite, whole, on an app whose
// pool goes through pgbouncer in transaction mode.
func TestSuitesThroughPgBouncer(t *testing.T) {
	pgb := startPgBouncer(t)
	pooled := func(env map[string]string) *testApp {
		_, direct := migratedDB(t)
		dsn := pgb.dsn(direct)
		db, err := sql.Open("pgx", poolDSN(dsn, poolerTransaction))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		env["DB_POOLER"] = poolerTransaction
		return newTestAppOn(t, db, dsn, env)
	}
	t.Run("authorization matrix", func(t *testing.T) { authorizationMatrix(t, pooled(map[string]string{})) })
	t.Run("bad input", func(t *testing.T) { badInputSuite(t, pooled(map[string]string{"MAX_BODY_BYTES": "4096"})) })
}

// Three replicas through one pgbouncer with 5 server connections, far
// fewer than their pools would hold: the shared limiter, the outbox (each
// mail once), a mixed load with no 5xx, and a rolling restart under load
// that fails no request and applies every answered write once.
func TestReplicasThroughPgBouncer(t *testing.T) {
	pgb := startPgBouncer(t)
	_, direct := newTestDB(t) // the replicas migrate it, straight to PostgreSQL
	smtp := startSMTP(t, freePort(t), t.TempDir())
	env := replicaEnv(pgb.dsn(direct), "DB_POOLER=transaction", "MIGRATION_DATABASE_URL="+direct,
		"RATE_LIMIT_AUTH_REQUESTS=10", "RATE_LIMIT_API_REQUESTS=1000000",
		"SMTP_HOST=127.0.0.1", "SMTP_PORT="+strconv.Itoa(smtp.port), "SMTP_TLS=none", "MAIL_FROM=App <noreply@example.com>",
		"FRONTEND_URL=https://app.example.com", "SECRET_KEY="+testSecretKey)
	rs := &replicaSet{dsn: direct, env: env}
	for range 3 {
		port := freePort(t)
		rs.ports = append(rs.ports, port)
		rs.replicas = append(rs.replicas, startReplica(t, port, env))
	}
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

	t.Run("the auth budget is one across replicas", func(t *testing.T) {
		for i := range 10 {
			r := doRequest(t, rs.replicas[i%3].url(), req{method: "POST", path: "/api/v1/auth/password-recovery", header: from("198.51.100.20"),
				body: map[string]any{"email": fmt.Sprintf("nobody%d@example.com", i)}})
			expectStatus(t, r, 202)
		}
		for _, p := range rs.replicas {
			expectProblem(t, doRequest(t, p.url(), req{method: "POST", path: "/api/v1/auth/password-recovery", header: from("198.51.100.20"),
				body: map[string]any{"email": "nobody@example.com"}}), 429, "rate_limited")
		}
	})
	t.Run("each mail is sent once", func(t *testing.T) {
		for i := range 6 {
			expectStatus(t, doRequest(t, rs.replicas[i%3].url(), req{method: "POST", path: "/api/v1/auth/register", header: from(fmt.Sprintf("203.0.113.%d", i+1)),
				body: map[string]any{"email": fmt.Sprintf("mail%d@example.com", i), "password": "password-123"}}), 201)
		}
		for i := range 6 {
			smtp.waitMail(t, fmt.Sprintf("mail%d@example.com", i), "Confirm", 0)
		}
		time.Sleep(2 * time.Second) // three workers had their chance at each row
		for i := range 6 {
			if n := countMail(t, smtp, fmt.Sprintf("mail%d@example.com", i), "Confirm"); n != 1 {
				t.Errorf("mail%d@example.com got %d verification mails, want 1", i, n)
			}
		}
	})

	n := startNginx(t, rs.ports...)
	base := n.httpsURL()
	token := signUpThrough(t, n.client(""), base, "load@example.com")
	db := databaseName(direct)
	t.Run("a mixed load answers no 5xx", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		defer cancel()
		res := &loadResult{}
		var maxServers, maxClients int
		done := make(chan struct{})
		go func() { mixedLoad(ctx, n.client(""), base, token, 32, res); close(done) }()
		for ctx.Err() == nil {
			s, c := pgb.pools(t, db)
			maxServers, maxClients = max(maxServers, s), max(maxClients, c)
			time.Sleep(200 * time.Millisecond)
		}
		<-done
		created := 0
		res.created.Range(func(any, any) bool { created++; return true })
		t.Logf("through pgbouncer, 32 clients for 6 s: %d answered, %d failed; pgbouncer held at most %d server connections for up to %d client connections",
			res.ok.Load(), res.failed.Load(), maxServers, maxClients)
		if res.failed.Load() != 0 {
			t.Fatalf("%d requests failed: %v", res.failed.Load(), res.failures)
		}
		if res.ok.Load() < 200 {
			t.Fatalf("only %d requests answered: the load did not run", res.ok.Load())
		}
		if maxServers > 5 || maxClients <= maxServers {
			t.Fatalf("pgbouncer held %d server connections for %d clients; want at most its pool of 5, for more clients", maxServers, maxClients)
		}
		if rows := countItems(t, direct); rows != created {
			t.Fatalf("%d items in the database, %d answered 201", rows, created)
		}
	})
	t.Run("a rolling restart under load fails no request", func(t *testing.T) {
		before := countItems(t, direct)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res := &loadResult{}
		done := make(chan struct{})
		go func() { mixedLoad(ctx, n.client(""), base, token, 8, res); close(done) }()
		time.Sleep(2 * time.Second)
		for i, port := range rs.ports {
			rs.replicas[i].cmd.Process.Signal(syscall.SIGTERM)
			if code := rs.replicas[i].wait(t); code != 0 {
				t.Errorf("replica %d exited %d on SIGTERM", i, code)
			}
			rs.replicas[i] = startReplica(t, port, env)
			time.Sleep(2 * time.Second)
		}
		cancel()
		<-done
		created := 0
		res.created.Range(func(any, any) bool { created++; return true })
		t.Logf("rolling restart through pgbouncer: %d answered, %d failed, %d items created", res.ok.Load(), res.failed.Load(), created)
		if res.failed.Load() != 0 {
			t.Fatalf("%d requests failed during the rolling restart: %v", res.failed.Load(), res.failures)
		}
		if rows := countItems(t, direct) - before; rows != created {
			t.Fatalf("%d items written, %d answered 201: a write applied without its answer, or lost", rows, created)
		}
	})
}

// The pgbouncer.ini the pgbouncer image ships (docker-compose.pooler.yml)
// is one Debian's pgbouncer runs: the database's host, the port and the
// user list are the test's, every other line as shipped, and a client
// that gives its password reaches PostgreSQL in transaction mode.
func TestShippedPgBouncerConfigRuns(t *testing.T) {
	src, err := os.ReadFile("deploy/pgbouncer/pgbouncer.ini")
	if err != nil {
		t.Fatal(err)
	}
	_, direct := migratedDB(t)
	pg, _ := url.Parse(adminDSN())
	port := freePort(t)
	ini := strings.NewReplacer(
		"app = host=db port=5432 dbname=app ", fmt.Sprintf("app = host=%s port=%s dbname=%s ", pg.Hostname(), pg.Port(), databaseName(direct)),
		"listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1",
		"listen_port = 6432", fmt.Sprintf("listen_port = %d", port),
		"auth_file = /run/secrets/pgbouncer_userlist", "auth_file = USERLIST",
	).Replace(string(src))
	if !strings.Contains(ini, "host="+pg.Hostname()+" ") || !strings.Contains(ini, "listen_addr = 127.0.0.1") || !strings.Contains(ini, fmt.Sprintf("listen_port = %d", port)) || !strings.Contains(ini, "auth_file = USERLIST") || !strings.Contains(ini, "pool_mode = transaction") {
		t.Fatalf("pgbouncer.ini no longer has the lines the test replaces:\n%s", ini)
	}
	runPgBouncer(t, port, ini, `"postgres" "a-local-password"`)
	db, err := sql.Open("pgx", poolDSN(fmt.Sprintf("postgres://postgres:a-local-password@127.0.0.1:%d/app?sslmode=disable", port), poolerTransaction))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("through the shipped configuration: %d migrations, %v", n, err)
	}
	// Its server connections plan generically, as the api's pool does
	// straight to PostgreSQL.
	var mode string
	if err := db.QueryRow(`SELECT current_setting('plan_cache_mode')`).Scan(&mode); err != nil || mode != "force_generic_plan" {
		t.Errorf("through the shipped configuration plan_cache_mode is %q (%v), want force_generic_plan", mode, err)
	}
}

// The compose stack's pooler override: PgBouncer hardened like the other
// services, the api's pools to it in transaction mode and its migrations
// straight to db, and the image's pgbouncer.ini reading the secret the
// override mounts and lending the database compose names.
func TestComposePoolerOverride(t *testing.T) {
	cfg := composeConfig(t, "docker-compose.yml", "docker-compose.pooler.yml")
	services := cfg["services"].(map[string]any)
	pgb, _ := services["pgbouncer"].(map[string]any)
	if pgb == nil {
		t.Fatalf("no pgbouncer service: %v", services)
	}
	build, _ := pgb["build"].(map[string]any)
	if ctx, _ := build["context"].(string); !strings.HasSuffix(ctx, "/deploy/pgbouncer") {
		t.Errorf("pgbouncer is built from %v, want ./deploy/pgbouncer", pgb["build"])
	}
	if pgb["healthcheck"] == nil || pgb["restart"] == nil || pgb["logging"] == nil || pgb["ports"] != nil {
		t.Errorf("pgbouncer: healthcheck %v, restart %v, logging %v, ports %v", pgb["healthcheck"], pgb["restart"], pgb["logging"], pgb["ports"])
	}
	if pgb["read_only"] != true || fmt.Sprint(pgb["cap_drop"]) != "[ALL]" || !strings.Contains(fmt.Sprint(pgb["security_opt"]), "no-new-privileges") || pgb["mem_limit"] == nil {
		t.Errorf("pgbouncer hardening: %v", pgb)
	}
	if dep, _ := pgb["depends_on"].(map[string]any)["db"].(map[string]any); dep["condition"] != "service_healthy" {
		t.Errorf("pgbouncer depends_on: %v", pgb["depends_on"])
	}
	api := services["api"].(map[string]any)
	env := api["environment"].(map[string]any)
	if env["DB_POOLER"] != "transaction" || env["DATABASE_URL_FILE"] != "/run/secrets/pooler_database_url" || env["MIGRATION_DATABASE_URL_FILE"] != "/run/secrets/database_url" {
		t.Errorf("api: DB_POOLER %v, DATABASE_URL_FILE %v, MIGRATION_DATABASE_URL_FILE %v", env["DB_POOLER"], env["DATABASE_URL_FILE"], env["MIGRATION_DATABASE_URL_FILE"])
	}
	for _, s := range []string{"database_url", "pooler_database_url", "secret_key", "smtp_password", "first_superuser_password"} {
		if !strings.Contains(fmt.Sprint(api["secrets"]), "source:"+s+"]") {
			t.Errorf("api secrets %v lack %s", api["secrets"], s)
		}
	}
	if dep, _ := api["depends_on"].(map[string]any)["pgbouncer"].(map[string]any); dep["condition"] != "service_healthy" {
		t.Errorf("api depends_on: %v", api["depends_on"])
	}
	// The image's configuration: the user list is the secret mounted, the
	// database is compose's db, the port the one the healthcheck knocks on.
	src, err := os.ReadFile("deploy/pgbouncer/pgbouncer.ini")
	if err != nil {
		t.Fatal(err)
	}
	ini := string(src)
	if !strings.Contains(fmt.Sprint(pgb["secrets"]), "source:pgbouncer_userlist]") || !strings.Contains(ini, "\nauth_file = /run/secrets/pgbouncer_userlist\n") {
		t.Errorf("pgbouncer mounts %v; pgbouncer.ini's auth_file must be /run/secrets/pgbouncer_userlist", pgb["secrets"])
	}
	if !strings.Contains(ini, "\napp = host=db port=5432 dbname=app ") || !strings.Contains(ini, "\nlisten_port = 6432\n") || !strings.Contains(fmt.Sprint(pgb["healthcheck"]), "/6432") {
		t.Errorf("pgbouncer.ini's database or port disagree with the stack:\n%s", ini)
	}
	for name, sec := range cfg["secrets"].(map[string]any) {
		if file, _ := sec.(map[string]any)["file"].(string); !strings.HasSuffix(file, "/secrets/"+name) {
			t.Errorf("secret %s comes from %q, want ./secrets/%s", name, file, name)
		}
	}
}
