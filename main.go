// Command server is the accounts-and-items API: see README.md and docs/.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stamped at build time: -ldflags "-X main.version=1.2.0 -X main.commit=abc1234".
var (
	version = ""
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.LookupEnv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		code := 1
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		// run has logged the error as JSON on stdout; a configuration or
		// usage error is also said in plain words for a person at a terminal.
		if code == 2 {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}
}

// buildInfo is the version and commit: what -ldflags stamped, else what the
// Go toolchain recorded, else "dev" and "unknown".
func buildInfo() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" && len(s.Value) >= 7 {
				rev = s.Value[:7]
			}
		}
	}
	if ver == "" {
		ver = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

// run is the whole program; tests call it in-process with their own
// environment and a context they cancel instead of sending SIGTERM. Every
// line it writes to stdout is JSON, its last one included.
func run(ctx context.Context, args []string, lookup lookupEnv, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard) // -help is answered below, and main says an error once
	checkHealth := fs.Bool("healthcheck", false, "ask the local /api/v1/health and exit 0 when it answers 200, else 1")
	showVersion := fs.Bool("version", false, "print the version and exit")
	superuserEmail := fs.String("create-superuser", "", "create (or promote) the superuser `EMAIL`, reading the password from standard input, and exit")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		// Asked for, the usage is the answer: on stdout, and not a failure.
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage of %s (settings come from the environment; see docs/configuration.md):\n", args[0])
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return exitError{code: 2, err: fmt.Errorf("%w (see -help)", err)}
	}
	ver, rev := buildInfo()
	if *showVersion {
		fmt.Fprintf(stdout, "%s (commit %s)\n", ver, rev)
		return nil
	}
	cfg, err := loadConfig(lookup)
	if *checkHealth {
		// Only PORT matters here; a config problem elsewhere is the server's to report.
		port := 8080
		v, _ := lookup("PORT")
		if p, perr := strconv.Atoi(v); perr == nil {
			port = p
		}
		err := healthcheck(ctx, port)
		if err != nil {
			fmt.Fprintln(stderr, err) // Docker shows a healthcheck's output: say why
		}
		return err
	}
	// A process writing to a file or pipe buffers its log (one system call
	// per 64 KiB, not per line); lines arrive at most logFlushInterval late,
	// and Close writes the rest on every way out of run, a panic included.
	out := newLineWriter(stdout)
	if f, ok := stdout.(*os.File); ok {
		out = newBufferedLineWriter(f, logFlushInterval)
	}
	defer out.Close()
	logger := slog.New(newJSONHandler(out, cfg.LogLevel))
	if err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			logger.Error("invalid configuration", "problems", ce.problems)
		}
		return exitError{code: 2, err: err}
	}
	if *superuserEmail != "" {
		err = createSuperuser(ctx, logger, cfg, *superuserEmail, stdin)
	} else {
		err = serve(ctx, logger, cfg, ver, rev)
	}
	var ee exitError
	if err != nil && !(errors.As(err, &ee) && ee.logged) {
		logger.Error("stopped with an error", "error", err.Error())
	}
	return err
}

// serve runs the server until ctx ends, then drains it.
func serve(ctx context.Context, logger *slog.Logger, cfg config, ver, rev string) error {
	logger.Info("starting", "version", ver, "commit", rev, "config", cfg)
	// The ports first: a taken one stops the start before anything runs,
	// naming the variable to change.
	ls, err := openListeners(cfg)
	if err != nil {
		return err
	}
	if cfg.SecretKeyGenerated {
		logger.Warn("SECRET_KEY is not set: development made a key for this process; mail it queued cannot be sent by another process or after a restart")
	}
	if err := createDevDatabase(ctx, logger, cfg); err != nil {
		ls.close()
		return err
	}
	db, err := openDB(cfg)
	if err != nil {
		ls.close()
		return err
	}
	defer db.Close()
	health := &healthState{db: db, version: ver, commit: rev, started: time.Now(), readyCh: make(chan struct{})}
	deps := newServerDeps(logger, cfg, db, health, time.Now)

	// Background work (migrations, janitors, the outbox, the metrics
	// listener) stops with bgCtx and is waited for before the pool closes.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer func() {
		stopBackground()
		bg.Wait()
	}()
	refused := startBackground(bgCtx, &bg, logger, cfg, deps, ls)

	srv := newHTTPServer(ctx, logger, cfg, deps)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ls.api) }()
	announce(logger, cfg, ls.api)

	select {
	case err := <-serveErr:
		return err
	case err := <-refused: // a database that refuses us for good stops the start
		srv.Close()
		return exitError{code: 2, err: err}
	case <-ctx.Done():
	}
	return drain(logger, cfg, srv, ls.api, health, &deps.metrics.inFlight)
}

// createDevDatabase creates development's database when it is missing. A
// database that refuses the role or its password stops the start; one
// that cannot be reached yet is only noted, as the start retries it.
func createDevDatabase(ctx context.Context, logger *slog.Logger, cfg config) error {
	if cfg.Env != envDevelopment {
		return nil
	}
	dsn := cfg.DatabaseURL
	if cfg.MigrationDatabaseURL != "" {
		dsn = cfg.MigrationDatabaseURL // straight to PostgreSQL
	}
	created, err := ensureDatabase(ctx, dsn)
	switch {
	case refusal(err) != "":
		return exitError{code: 2, err: errors.New(refusal(err))}
	case unreachable(err, cfg.DatabaseURL) != "":
		logger.Warn("could not create the development database: "+unreachable(err, cfg.DatabaseURL), "error", err.Error())
	case err != nil:
		logger.Warn("could not create the development database", "error", err.Error())
	case created != "":
		logger.Info("created the development database", "database", created)
	}
	return nil
}

// startBackground starts, under bg and until ctx ends, what runs beside
// the requests: migrations and the first superuser (then the health turns
// ready), the janitors, the outbox worker, and the metrics and pprof
// listeners. The channel says why, if the database refuses the service for
// good.
func startBackground(ctx context.Context, bg *sync.WaitGroup, logger *slog.Logger, cfg config, deps serverDeps, ls listeners) <-chan error {
	refused := make(chan error, 1)
	health := deps.health
	bg.Go(func() {
		err := prepareDatabase(ctx, logger, health.db, cfg, func(ctx context.Context) error {
			return ensureFirstSuperuser(ctx, logger, cfg, deps.store, deps.hasher)
		})
		if err != nil {
			refused <- err
		} else if ctx.Err() == nil {
			health.ready.Store(true)
			close(health.readyCh)
		}
	})
	send := logSender(logger) // development without SMTP_HOST (production requires it)
	if cfg.SMTP.Host != "" {
		send = smtpSender(cfg.SMTP, cfg.MailFrom.Address)
	}
	worker := &outboxWorker{store: deps.store, mailer: deps.mailer, send: send, logger: logger, interval: outboxPollInterval,
		maxAttempts: cfg.MailMaxAttempts, result: deps.metrics.mailSent}
	bg.Go(func() {
		every(ctx, time.Minute, func(ctx context.Context) {
			deps.limits.sweep(ctx)
			deps.audit.sweep(ctx)
		})
	})
	bg.Go(func() {
		every(ctx, time.Hour, func(ctx context.Context) {
			sweepSessions(ctx, logger, deps.store, knownNetworkTTL)
			if err := deps.store.purgeOutbox(ctx, time.Now().Add(-outboxRetention)); err != nil && ctx.Err() == nil {
				logger.Warn("could not purge the outbox", "error", err.Error())
			}
			worker.adoptLegacy(ctx)
		})
	})
	bg.Go(func() {
		select { // the outbox table exists once migrations ran
		case <-health.readyCh:
			worker.run(ctx)
		case <-ctx.Done():
		}
	})
	for _, l := range []struct {
		name string
		ln   net.Listener
		h    http.Handler
	}{{"metrics", ls.metrics, metricsHandler(deps.metrics)}, {"pprof", ls.pprof, pprofHandler()}} {
		if l.ln == nil {
			continue
		}
		logger.Info(l.name+" listening", "addr", l.ln.Addr().String())
		bg.Go(func() {
			if err := serveMetrics(ctx, l.ln, l.h); err != nil {
				logger.Error(l.name+" listener stopped", "error", err.Error())
			}
		})
	}
	return refused
}

// newHTTPServer is the API's server: the handler, and timeouts that keep a
// slow or idle client from holding a connection.
func newHTTPServer(ctx context.Context, logger *slog.Logger, cfg config, deps serverDeps) *http.Server {
	return &http.Server{
		Handler:           newServer(logger, cfg, deps),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// announce logs where the API listens, and in development where a browser
// finds the frontend (on localhost for passkeys) and the docs.
func announce(logger *slog.Logger, cfg config, ln net.Listener) {
	logger.Info("listening", "addr", ln.Addr().String())
	here := "http://" + net.JoinHostPort(browsable(cfg.Host), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if cfg.ServeFrontend {
		logger.Info("frontend", "url", here+"/")
		// WebAuthn refuses an IP address: development's passkeys live on
		// localhost, at the same port.
		if rp := relyingParty(cfg); rp.id == "localhost" && browsable(cfg.Host) != "localhost" {
			logger.Info("passkeys need a domain name: use this address for them", "url", rp.origin+"/")
		}
	}
	if cfg.DocsEnabled {
		logger.Info("API reference", "url", here+"/docs")
	}
}

// acceptQueueGrace is how long the server keeps taking connections whose
// handshake finished before new attempts were dropped: the accept loop
// needs microseconds; this is room for a busy process.
const acceptQueueGrace = 100 * time.Millisecond

// drain is the shutdown sequence: fail readiness at once, keep serving for
// SHUTDOWN_DELAY so load balancers notice, then stop accepting and give
// in-flight requests SHUTDOWN_TIMEOUT to finish. Stopping to accept is two
// steps: new connection attempts are dropped and the accept queue is served
// for acceptQueueGrace, then the listener closes, so its close resets no
// connection a proxy has already written a request into.
// Requests still running at the timeout are cut off: their access lines
// say so (503, cut_off), and the error line counts them.
func drain(logger *slog.Logger, cfg config, srv *http.Server, ln net.Listener, health *healthState, inFlight *atomic.Int64) error {
	health.draining.Store(true)
	logger.Info("shutting down: readiness now fails", "delay", cfg.ShutdownDelay.String(), "timeout", cfg.ShutdownTimeout.String())
	time.Sleep(cfg.ShutdownDelay)
	if err := refuseNewConnections(ln); err != nil {
		logger.Warn("shutting down: could not hold off new connections before closing the listener", "error", err.Error())
	} else {
		time.Sleep(acceptQueueGrace)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		cut := inFlight.Load()
		health.cutOff.Store(true)
		srv.Close()
		// Give the cut handlers a moment to return and write their lines.
		for deadline := time.Now().Add(time.Second); inFlight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		logger.Error("in-flight requests were cut off at the shutdown timeout", "cut_off", cut, "timeout", cfg.ShutdownTimeout.String())
		return exitError{code: 1, logged: true, err: fmt.Errorf("shutdown: %d requests cut off after %s", cut, cfg.ShutdownTimeout)}
	}
	logger.Info("stopped")
	return nil
}

// prepareDatabase migrates the schema and then runs seed (the first
// superuser), retrying until the database answers, so the server can start
// before it. It returns nil once both succeeded or when ctx ends, and an
// error naming DATABASE_URL when the database refuses the service for a
// reason no retry can fix (refusal).
func prepareDatabase(ctx context.Context, logger *slog.Logger, db *sql.DB, cfg config, seed func(context.Context) error) error {
	delay := 500 * time.Millisecond
	for {
		err := func() error {
			m, err := migrateOn(ctx, db, cfg.MigrationDatabaseURL)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if len(m.applied) > 0 {
				logger.Info("migrations applied", "versions", m.applied)
			}
			if err := seed(ctx); err != nil {
				return err
			}
			logger.Info("database ready", "schema_version", m.current)
			return nil
		}()
		if err == nil {
			return nil
		}
		if why := refusal(err); why != "" {
			return errors.New(why)
		}
		msg := "database not ready; retrying"
		if why := unreachable(err, cfg.DatabaseURL); why != "" {
			msg = "database not ready (" + why + "); retrying"
		}
		logger.Warn(msg, "error", err.Error(), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// browsable is a host a browser on this machine can open for a listen host.
func browsable(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "localhost"
	}
	return host
}

// every runs fn at each interval until ctx ends: the janitors' loop.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
