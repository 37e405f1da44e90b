package main

// The version kept with items and users (a trigger bumps it: migration
// 0011), as the store's conditional writes use it: the versions a write
// may apply to, and the error when the row is at another. etag.go reads
// them from If-Match; errors.go answers the error (412, 428).

// precondition is what a write asks of the row: nothing (versions nil: no
// If-Match, or *), or to be at one of versions (none, when no tag sent is
// one of ours).
type precondition struct {
	versions []int64 // nil: no condition
	missing  bool    // no If-Match, where IF_MATCH_REQUIRED asks for one
}

// staleError is a conditional write that changed nothing: the row is at
// version current, which the precondition does not name.
type staleError struct {
	current int64
	missing bool // the condition was the missing If-Match's (428)
}

func (e *staleError) Error() string { return "the row is at another version" }

// failed is p's error for a row at version current.
func (p precondition) failed(current int64) error {
	return &staleError{current: current, missing: p.missing}
}
