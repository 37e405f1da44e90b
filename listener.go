package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// listeners are the sockets the process serves on: the API's, and the
// operators' (metrics, pprof) when they are on.
type listeners struct{ api, metrics, pprof net.Listener }

// openListeners binds every listener the configuration asks for. One that
// cannot bind is a configuration error (exit 2) naming the variable to
// change; the others are closed again.
func openListeners(cfg config) (listeners, error) {
	var ls listeners
	var err error
	bind := func(variable, addr string, listen func(string) (net.Listener, error)) net.Listener {
		if err != nil {
			return nil
		}
		var ln net.Listener
		if ln, err = listen(addr); err != nil {
			err = exitError{code: 2, err: fmt.Errorf("cannot listen on %s (%v): set %s to a free address", addr, err, variable)}
		}
		return ln
	}
	tcp := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	ls.api = bind("PORT (and HOST)", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), listenTCP)
	if cfg.MetricsAddr != "" {
		ls.metrics = bind("METRICS_ADDR", cfg.MetricsAddr, tcp)
	}
	if cfg.PprofEnabled {
		ls.pprof = bind("PPROF_ADDR", cfg.PprofAddr, tcp)
	}
	if err != nil {
		ls.close()
	}
	return ls, err
}

// close closes every listener that is open.
func (ls listeners) close() {
	for _, ln := range []net.Listener{ls.api, ls.metrics, ls.pprof} {
		if ln != nil {
			ln.Close()
		}
	}
}

// listenTCP listens on addr with plain TCP. Go listens with Multipath TCP
// by default where the kernel has it, and an MPTCP socket takes no socket
// filter, which refuseNewConnections needs at shutdown; the proxy in front
// speaks plain TCP anyway.
func listenTCP(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), "tcp", addr)
}
