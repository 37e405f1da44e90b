package main

import "time"

// The session policy: when a session ends, and what an account held to
// enrolment may do. The store enforces the first in its statements, auth.go
// the second; config.go makes it from the settings.

// sessionPolicy is when sessions end (ttl after creation, idle after their
// last use, whichever comes first) and what they may do: an account that
// must have a second factor (mfaRequired: off, superusers, all) and has
// none may use only the routes that let it enrol (enrolling).
type sessionPolicy struct {
	ttl, idle   time.Duration
	mfaRequired string
	enrolling   bool
}

// whileEnrolling is p for the routes an account may use before it enrols:
// its own enrolment, GET /users/me and logout.
func (p sessionPolicy) whileEnrolling() sessionPolicy {
	p.enrolling = true
	return p
}

// lastUsedGranularity is how stale last_used_at may get: a request writes
// it only when it is older, so an authenticated request stays one read.
const lastUsedGranularity = time.Minute
