package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestNewPasswordProblem(t *testing.T) {
	if n := len(commonPasswords()); n < 10000 {
		t.Fatalf("%d common passwords, want at least 10,000", n)
	}
	ada := "Ada María Lovelace-Byron"
	for _, c := range []struct {
		pw, email, want string // want: a word of the message, or "" for accepted
		name            *string
	}{
		{"password1", "x@example.com", "common", nil},
		{"PassWord1", "x@example.com", "common", nil}, // compared case-insensitively
		{"iloveyou1", "x@example.com", "common", nil},
		{"12345678", "x@example.com", "common", nil},
		{"alice.smith forever", "alice.smith@wonderland.org", "(alice.smith)", nil},
		{"my name is SMITH!", "alice.smith@wonderland.org", "(smith)", nil},
		{"wonderland-2026", "alice.smith@wonderland.org", "(wonderland)", nil},
		{"all the news today", "bob+news@mail.example.com", "(news)", nil},
		{"correct horse battery", "alice.smith@wonderland.org", "", nil},
		{"joe and ann went out", "jo.ann@ab.io", "", nil},        // pieces under 4 characters are not checked
		{"online forever and ever", "x@example.online", "", nil}, // nor the top-level domain
		{strings.Repeat("ü", 128), "x@example.com", "", nil},
		// A common password in disguise is still one: spaces around it
		// (plain, no-break, em), a format character inside (zero-width
		// space, soft hyphen, word joiner, BOM), a Cyrillic or Greek
		// look-alike letter, fullwidth forms, and capitals among them.
		{" password123", "x@example.com", "common", nil},
		{"password123 ", "x@example.com", "common", nil},
		{"\u00a0password123", "x@example.com", "common", nil},
		{"password123\u2003", "x@example.com", "common", nil},
		{"pass\u200bword123", "x@example.com", "common", nil},
		{"password\u00ad123", "x@example.com", "common", nil},
		{"\ufeffpassword123\u2060", "x@example.com", "common", nil},
		{"pаssword123", "x@example.com", "common", nil}, // Cyrillic а
		{"passwοrd123", "x@example.com", "common", nil}, // Greek ο
		{"ｐａｓｓｗｏｒｄ１２３", "x@example.com", "common", nil}, // fullwidth
		{"PАSSWΟRD123", "x@example.com", "common", nil}, // Cyrillic А, Greek Ο
		// ... and so is the email's word, or a word of the full name.
		{"ѕmith rules ok", "alice.smith@wonderland.org", "(smith)", nil},
		{"all hail ada", "x@example.com", "(Ada)", &ada},
		{"byron's last poem", "x@example.com", "(Byron)", &ada},
		{"maría y josé 99", "x@example.com", "(María)", &ada},
		{"LOVELACE for ever", "x@example.com", "(Lovelace)", &ada},
		{"an ad for 99 mice", "x@example.com", "", &ada}, // "ad" is under 3 letters, and no name word is in it
		{"correct horse battery", "x@example.com", "", &ada},
	} {
		got := newPasswordProblem(c.pw, c.email, c.name)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("newPasswordProblem(%q, %q) = %q, want %q", c.pw, c.email, got, c.want)
		}
	}
}

// The policy at every endpoint that sets a password (registration, admin
// create, change, admin update, reset; -create-superuser is in main_test),
// never at login; a refusal is 422 on the field, saying which rule, and
// writes nothing.
func TestNewPasswordPolicyAtEveryEndpoint(t *testing.T) {
	a := newTestApp(t, nil)
	_, su := a.superuser("root@example.com")
	const email, password = "alice.smith@wonderland.org", "correct horse battery"
	bad := map[string]string{"iloveyou1": "most common", "smith rules ok": "email", "wonderland-99": "email"}
	refused := func(r response, field, why string) {
		t.Helper()
		expectProblem(t, r, 422, "validation_failed")
		errs := r.json["errors"].([]any)
		e := errs[0].(map[string]any)
		if len(errs) != 1 || e["field"] != field || !strings.Contains(e["message"].(string), why) {
			t.Fatalf("want one error on %s saying %q: %s", field, why, r.body)
		}
	}
	users := func() (n int) {
		a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&n)
		return n
	}
	before := users()
	for pw, why := range bad {
		refused(a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": email, "password": pw}}), "password", why)
		refused(a.do(req{method: "POST", path: "/api/v1/users", token: su, body: map[string]any{"email": email, "password": pw}}), "password", why)
	}
	// A disguised common password, and a word of the name being registered.
	refused(a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": email, "password": "\u00a0pаsswοrd123"}}), "password", "most common")
	refused(a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": email, "full_name": "Alice Liddell", "password": "liddell in a looking glass"}}), "password", "name")
	if users() != before {
		t.Fatal("a refused password made an account")
	}
	// 64 and 128 characters (not bytes) work.
	long64, long128 := strings.Repeat("horse ", 10)+"stop", strings.Repeat("é", 128)
	a.register(email, long64)
	a.register("bob@example.com", long128)
	a.login("bob@example.com", long128)
	token := a.login(email, long64)
	id := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}).str("id")

	for pw, why := range bad {
		refused(a.do(req{method: "POST", path: "/api/v1/users/me/password", token: token, body: map[string]any{"current_password": long64, "new_password": pw}}), "new_password", why)
		refused(a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: su, body: map[string]any{"password": pw}}), "password", why)
	}
	// An admin's new password is checked against the email the same change sets.
	refused(a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: su, body: map[string]any{"email": "queen.hearts@example.com", "password": "hearts and more"}}), "password", "email")
	token = a.login(email, long64) // nothing changed
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/users/me/password", token: token, body: map[string]any{"current_password": long64, "new_password": password}}), 204)

	// A reset: the link survives a refused password.
	a.deliverMail()
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": email}}), 202)
	link := tokenFrom(t, mailTo(t, a.deliverMail(), email, "Reset your password"), "/reset-password")
	for pw, why := range bad {
		refused(a.do(req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": link, "new_password": pw}}), "new_password", why)
	}
	a.login(email, password)
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": link, "new_password": "a fresh passphrase"}}), 204)

	// Never at login: a password set before the policy still signs in.
	hash, err := a.deps.hasher.hash(context.Background(), hashClaim{}, "password1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.deps.store.ensureUser(context.Background(), user{Email: "old@example.com", passwordHash: hash}); err != nil {
		t.Fatal(err)
	}
	a.login("old@example.com", "password1")
}

// The load scripts register an account of their own (scripts/fixture.sh):
// its password must pass the policy, or every measurement stops there.
func TestScriptFixturesPassThePolicy(t *testing.T) {
	re := regexp.MustCompile(`"email":"([^"]+)","password":"([^"]+)"`)
	n := 0
	for _, script := range []string{"scripts/fixture.sh"} {
		src, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			n++
			if problem := newPasswordProblem(m[2], m[1], nil); problem != "" {
				t.Errorf("%s: %s's password %s", script, m[1], problem)
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d fixtures, want the register and the login", n)
	}
}
