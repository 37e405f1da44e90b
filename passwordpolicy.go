package main

import (
	_ "embed"
	"strings"
	"sync"
	"unicode"
)

// The policy for a new password, on top of the length rule every password
// meets (passwordProblem): not one of the most common passwords (ASVS
// 6.2.4, and 6.2.12 as far as an offline list goes), and not containing
// the account's own email or a word of its name (6.2.11). Both are judged
// on the password folded (foldForPolicy), so a disguise does not pass; what
// is hashed is exactly what was typed. It applies where a password is
// chosen: registration, reset, change, admin create and update,
// -create-superuser; never at login, where it would only lock out a
// password already set. No composition rules (6.2.5).

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
// minNameWord is the same for a word of the account's full name.
const (
	minContextWord = 4
	minNameWord    = 3
)

// newPasswordProblem is why pw may not be chosen by the account with the
// address email and the full name fullName (nil when it has none), or ""
// when it may. It assumes passwordProblem passed.
func newPasswordProblem(pw, email string, fullName *string) string {
	folded := foldForPolicy(pw)
	if _, common := commonPasswords()[folded]; common {
		return "is one of the most common passwords; choose one that is harder to guess"
	}
	for _, word := range emailWords(email) {
		if strings.Contains(folded, word) {
			return "must not contain your email address or part of it (" + word + ")"
		}
	}
	for _, word := range nameWords(fullName) {
		if strings.Contains(folded, foldForPolicy(word)) {
			return "must not contain your name or part of it (" + word + ")"
		}
	}
	return ""
}

// foldForPolicy is pw as the policy compares it, what looks alike made
// alike: every Unicode space a plain space, format characters (zero-width
// and the like, Cf) dropped, fullwidth ASCII mapped to ASCII, the Cyrillic
// and Greek letters that look like Latin ones mapped to them
// (latinLookalikes), then lower-cased and trimmed.
func foldForPolicy(pw string) string {
	var b strings.Builder
	for _, r := range pw {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Cf, r):
		case r >= '！' && r <= '～': // U+FF01..U+FF5E, fullwidth forms of ! to ~
			b.WriteRune(r - '！' + '!')
		default:
			if latin, ok := latinLookalikes[r]; ok {
				r = latin
			}
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return strings.TrimSpace(b.String())
}

// latinLookalikes maps Cyrillic and Greek letters to the Latin letter they
// pass for: the single-letter Latin look-alikes of Unicode's confusables
// data (UTS #39, confusables.txt), a small subset kept by hand. Lower-case
// letters that only pass for Latin small capitals (в, к, м, н, т) are left
// out, as confusables.txt maps them there.
var latinLookalikes = map[rune]rune{
	// Cyrillic
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ј': 'j',
	'һ': 'h', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'ү': 'y',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T',
	'У': 'Y', 'Х': 'X', 'Ѕ': 'S', 'І': 'I', 'Ј': 'J', 'Ԛ': 'Q', 'Ԝ': 'W', 'Ӏ': 'l', 'Ү': 'Y',
	// Greek
	'α': 'a', 'ο': 'o', 'ρ': 'p', 'ν': 'v', 'ι': 'i', 'γ': 'y',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O',
	'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}

// nameWords are the words of a full name a password may not contain: its
// runs of letters of at least minNameWord.
func nameWords(fullName *string) []string {
	if fullName == nil {
		return nil
	}
	var words []string
	for _, w := range strings.FieldsFunc(*fullName, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if len([]rune(w)) >= minNameWord {
			words = append(words, w)
		}
	}
	return words
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
