package main

import (
	_ "embed"
	"strings"
	"sync"
)

// The policy for a new password, on top of the length rule every password
// meets (passwordProblem): not one of the most common passwords (ASVS
// 6.2.4, and 6.2.12 as far as an offline list goes), and not containing
// the account's own email (6.2.11). It applies where a password is chosen:
// registration, reset, change, admin create and update, -create-superuser;
// never at login, where it would only lock out a password already set. No
// composition rules (6.2.5).

// commonPasswordsFile is the list and its origin: see commonpasswords/README.md.
//
//go:embed commonpasswords/passwords.txt
var commonPasswordsFile string

// commonPasswords is the list as a set, lower-cased, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 18000)
	for line := range strings.Lines(commonPasswordsFile) {
		if p := strings.TrimRight(line, "\n"); p != "" {
			set[strings.ToLower(p)] = struct{}{}
		}
	}
	return set
})

// minContextWord is the shortest part of an email a password may not
// contain: shorter ones ("jo", "mail") are in too many good passwords.
const minContextWord = 4

// newPasswordProblem is why pw may not be chosen by the account with the
// address email, or "" when it may. It assumes passwordProblem passed.
func newPasswordProblem(pw, email string) string {
	lower := strings.ToLower(pw)
	if _, common := commonPasswords()[lower]; common {
		return "is one of the most common passwords; choose one that is harder to guess"
	}
	for _, word := range emailWords(email) {
		if strings.Contains(lower, word) {
			return "must not contain your email address or part of it (" + word + ")"
		}
	}
	return ""
}

// emailWords are the parts of an email a password may not contain, lower
// case, each at least minContextWord characters: the whole local part and
// its pieces between dots, dashes, underscores and pluses, and each label
// of the domain but the last (the top-level domain).
func emailWords(email string) []string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return nil
	}
	local, domain := strings.ToLower(email[:at]), strings.ToLower(email[at+1:])
	words := []string{local}
	words = append(words, strings.FieldsFunc(local, func(r rune) bool { return strings.ContainsRune(".-_+", r) })...)
	labels := strings.Split(domain, ".")
	words = append(words, labels[:len(labels)-1]...)
	var long []string
	for _, w := range words {
		if len(w) >= minContextWord {
			long = append(long, w)
		}
	}
	return long
}
