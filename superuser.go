package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// createSuperuser is `server -create-superuser EMAIL`: production bootstrap
// without putting a password in a flag or the environment. It reads one
// line from stdin, migrates the schema if needed, and creates the user or
// promotes (and re-activates, with this password) an existing one; run
// again with the same password, it changes nothing.
func createSuperuser(ctx context.Context, logger *slog.Logger, cfg config, rawEmail string, stdin io.Reader) error {
	email := normalizeEmail(rawEmail)
	if p := emailProblem(email); p != "" {
		return exitError{code: 2, err: fmt.Errorf("-create-superuser: the email %s", p)}
	}
	// Run without a pipe, the command waits at a terminal: say for what.
	logger.Info("reading the superuser's password from standard input (one line)", "email", email)
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("-create-superuser: reading the password from standard input: %w", err)
	}
	password := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	switch {
	case password == "":
		return exitError{code: 2, err: errors.New("-create-superuser: give the password on standard input (for example: printf '%s\\n' \"$PW\" | server -create-superuser EMAIL)")}
	case passwordProblem(password) != "":
		return exitError{code: 2, err: fmt.Errorf("-create-superuser: the password %s", passwordProblem(password))}
	case newPasswordProblem(password, email, nil) != "":
		return exitError{code: 2, err: fmt.Errorf("-create-superuser: the password %s", newPasswordProblem(password, email, nil))}
	case cfg.Env == envProduction && (isPlaceholder(password) || len([]rune(password)) < minProductionSecret):
		return exitError{code: 2, err: fmt.Errorf("-create-superuser: in production the password must be at least %d characters and not a placeholder", minProductionSecret)}
	}
	db, err := openDB(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrateOn(ctx, db, cfg.MigrationDatabaseURL); err != nil {
		return fmt.Errorf("-create-superuser: the database: %w", err)
	}
	s := &store{db: db, now: time.Now}
	pw := newPasswordHasher(passwordIterations, 1)
	u, err := s.userByEmail(ctx, email)
	switch {
	case errors.Is(err, errMissing):
		hash, err := pw.hash(ctx, hashClaim{first: true}, password)
		if err != nil {
			return err
		}
		if _, err := s.ensureUser(ctx, user{Email: email, passwordHash: hash, IsSuperuser: true}); err != nil {
			return fmt.Errorf("-create-superuser: %w", err)
		}
		logger.Info("superuser created", "email", email)
		return nil
	case err != nil:
		return fmt.Errorf("-create-superuser: %w", err)
	}
	same, _, err := pw.verify(ctx, hashClaim{first: true}, password, u.passwordHash)
	if err != nil {
		return fmt.Errorf("-create-superuser: %w", err)
	}
	if same && u.IsSuperuser && u.IsActive {
		logger.Info("superuser already exists with this password; nothing changed", "email", email)
		return nil
	}
	// Promote, re-activate, and set this password; the account's sessions
	// end, as after any admin password reset.
	hash, err := pw.hash(ctx, hashClaim{first: true}, password)
	if err != nil {
		return err
	}
	active, super := true, true
	if _, _, err := s.updateUser(ctx, u.ID, userChanges{PasswordHash: &hash, IsActive: &active, IsSuperuser: &super}, revokeSessions); err != nil {
		return fmt.Errorf("-create-superuser: %w", err)
	}
	logger.Info("superuser promoted", "email", email, "was_superuser", u.IsSuperuser, "was_active", u.IsActive, "password_changed", !same)
	return nil
}
