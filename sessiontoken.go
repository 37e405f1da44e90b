package main

import (
	"net/http"
	"strings"
	"time"
)

// A session's token reaches the service in one of two ways: a bearer
// token (API clients), or the browser's session cookie, which script in
// the page never sees (HttpOnly). The cookie's name has the __Host- prefix:
// the browser keeps it only if it is Secure, for Path=/ and no Domain, so
// no other host, and no page outside a secure context (https, or the
// loopback in development), can set it or have it sent.
const sessionCookie = "__Host-session"

// sessionToken is the request's session token: the bearer token when there
// is an Authorization header, else the session cookie's; "" when neither
// holds one of the right shape.
func sessionToken(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return tokenShaped(strings.TrimSpace(token))
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return tokenShaped(c.Value)
	}
	return ""
}

// hasSessionCookie says whether the request carries the session cookie,
// whatever its value.
func hasSessionCookie(r *http.Request) bool {
	_, err := r.Cookie(sessionCookie)
	return err == nil
}

// tokenShaped is token when it can be one of ours (32 bytes in unpadded
// base64url), else "".
func tokenShaped(token string) string {
	if len(token) != 43 {
		return ""
	}
	return token
}

// setSessionCookie hands the browser its session: HttpOnly (no script
// reads it), Secure, SameSite=Strict (no other site's page sends it), for
// as long as the session can live.
func setSessionCookie(w http.ResponseWriter, token string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", MaxAge: int(ttl / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// clearSessionCookie tells the browser to forget its session.
func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}
