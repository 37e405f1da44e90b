package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A newcomer's mistakes, as the binary answers them: each configuration
// error stops the start with exit 2 and one plain sentence on stderr that
// names the variable and says what to do, quoting only what was written.
func TestStartupErrorsSayWhatToDo(t *testing.T) {
	_, dsn := newTestDB(t)
	u, _ := url.Parse(dsn)
	db := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("pgx", adminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// A role that may log in but not connect to the test database.
	role := "nocon_" + db[len("test_"):]
	if _, err := admin.Exec("CREATE ROLE " + role + " LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP ROLE IF EXISTS " + role) })
	if _, err := admin.Exec("REVOKE CONNECT ON DATABASE " + db + " FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	noConnect := *u
	noConnect.User = url.User(role)

	noRole := *u
	noRole.User = url.User("nosuchuser")
	missing := *u
	missing.Path = "/no_such_database_here"
	missing.User = url.UserPassword("postgres", "Xk7-db-credential-42")

	production := []string{"APP_ENV=production", "SECRET_KEY=" + testSecretKey, "SMTP_HOST=127.0.0.1", "SMTP_PORT=1",
		"MAIL_FROM=noreply@example.com", "FRONTEND_URL=https://app.example.com"}
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"an unknown APP_ENV is the only error", []string{"APP_ENV=prod", "PORT=abc"},
			`invalid configuration:
  - APP_ENV: "prod" is neither of the two accepted values, development and production`},
		{"a DATABASE_URL that is not a URL", []string{"DATABASE_URL=postgres//oops"},
			`invalid configuration:
  - DATABASE_URL: "postgres//oops" is not a URL such as postgres://user:password@host:5432/dbname?sslmode=disable`},
		{"a DATABASE_URL the driver cannot use, its password masked", []string{"DATABASE_URL=postgres://app:Xk7-db-credential-42@db:5432/app?sslmode=sometimes"},
			`invalid configuration:
  - DATABASE_URL: "postgres://app:xxxxx@db:5432/app?sslmode=sometimes" is not a usable PostgreSQL URL: failed to configure TLS (sslmode is invalid)`},
		{"a typo that hides the password from the URL parser", []string{"DATABASE_URL=postgres//app:Xk7-db-credential-42@db/app"},
			`invalid configuration:
  - DATABASE_URL: "postgres//app:xxxxx@db/app" is not a URL such as postgres://user:password@host:5432/dbname?sslmode=disable`},
		{"no such role", []string{"DATABASE_URL=" + noRole.String()},
			`DATABASE_URL: PostgreSQL refused: role "nosuchuser" does not exist; check the user in DATABASE_URL (or create that role), and that the server's pg_hba.conf lets it in`},
		{"no such database in production", append([]string{"DATABASE_URL=" + missing.String()}, production...),
			`DATABASE_URL: PostgreSQL refused: database "no_such_database_here" does not exist; create that database (createdb), or change its name in DATABASE_URL`},
		{"permission denied", []string{"DATABASE_URL=" + noConnect.String()},
			fmt.Sprintf(`DATABASE_URL: PostgreSQL refused: permission denied for database "%s"; grant the role what the service needs (CONNECT on the database, CREATE on its schema), or use the database's owner`, db)},
		{"a wrong password", []string{"DATABASE_URL=" + refusingPostgres(t, "28P01", `password authentication failed for user "app"`)},
			`DATABASE_URL: PostgreSQL refused: password authentication failed for user "app"; check the password in DATABASE_URL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, serverBinary(t))
			cmd.Env = append([]string{"PORT=0", "METRICS_ADDR=off", "PATH=/usr/bin:/bin"}, c.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
			}
			if got := strings.TrimSpace(stderr.String()); got != c.want {
				t.Fatalf("stderr:\n%s\nwant:\n%s", got, c.want)
			}
			for _, never := range []string{"Xk7-db-credential-42", "plan_cache_mode", "is PostgreSQL running"} {
				if strings.Contains(stdout.String()+stderr.String(), never) {
					t.Fatalf("the output says %q:\n%s%s", never, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// A database that is merely not there yet is retried, and the log says
// where it was looked for.
func TestUnreachableDatabaseIsRetriedSayingWhere(t *testing.T) {
	rn := startRun(t, map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/app?sslmode=disable&connect_timeout=1", "SHUTDOWN_DELAY": "0s"})
	deadline := time.Now().Add(10 * time.Second)
	for len(rn.logs.linesWith(t, "msg", "database not ready (nothing answers at 127.0.0.1:1; is PostgreSQL running there?); retrying")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no retry line naming the address:\n%s", rn.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dev := rn.logs.linesWith(t, "msg", "could not create the development database: nothing answers at 127.0.0.1:1; is PostgreSQL running there?"); len(dev) != 1 {
		t.Fatalf("the development database line:\n%s", rn.logs)
	}
}

// refusingPostgres is a PostgreSQL server as far as a refused login goes:
// it asks for a password and answers with the error code given. The local
// cluster trusts every local login, so a wrong password cannot be produced
// there. It returns a DATABASE_URL pointing at it.
func refusingPostgres(t *testing.T, code, message string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				var n uint32
				if binary.Read(r, binary.BigEndian, &n) != nil || n < 8 {
					return
				}
				r.Discard(int(n) - 4) // the startup message
				// AuthenticationCleartextPassword, then the client's password message.
				conn.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 3})
				if _, err := r.ReadByte(); err != nil {
					return
				}
				if binary.Read(r, binary.BigEndian, &n) != nil || n < 4 {
					return
				}
				r.Discard(int(n) - 4)
				var body []byte
				for _, f := range []struct {
					tag byte
					v   string
				}{{'S', "FATAL"}, {'V', "FATAL"}, {'C', code}, {'M', message}} {
					body = append(append(append(body, f.tag), f.v...), 0)
				}
				body = append(body, 0)
				msg := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(len(body)+4))
				conn.Write(append(msg, body...))
			}()
		}
	}()
	return "postgres://app:Xk7-db-credential-42@" + ln.Addr().String() + "/app?sslmode=disable"
}
