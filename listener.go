package main

import (
	"context"
	"net"
)

// listenTCP listens on addr with plain TCP. Go listens with Multipath TCP
// by default where the kernel has it, and an MPTCP socket takes no socket
// filter, which refuseNewConnections needs at shutdown; the proxy in front
// speaks plain TCP anyway.
func listenTCP(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), "tcp", addr)
}
