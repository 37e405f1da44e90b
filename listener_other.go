//go:build !linux

package main

import "net"

// refuseNewConnections needs a Linux socket filter; elsewhere the listener
// is simply closed by the shutdown (see listener_linux.go).
func refuseNewConnections(net.Listener) error { return nil }
