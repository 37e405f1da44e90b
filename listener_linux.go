package main

import (
	"net"
	"syscall"
)

// refuseNewConnections makes the kernel drop new connection attempts (SYN
// without ACK) to ln, while handshakes already under way complete and
// land in the accept queue, where the server still takes them.
//
// Closing a listening socket resets every connection still waiting in its
// accept queue, and a proxy has usually written a request into such a
// connection already: it reads a reset after sending, and may not retry a
// POST. With new attempts dropped first and the queue emptied by the
// server, the close resets nothing. The proxy's dropped SYN is sent again
// about a second later, meets the closed port, and the proxy tries another
// replica, which is safe for any method: nothing was sent.
//
// The filter is classic BPF on the listening socket; it sees the TCP
// header, whose byte 13 holds the flags.
func refuseNewConnections(ln net.Listener) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	const syn, ack = 0x02, 0x10
	filter := []syscall.SockFilter{
		{Code: syscall.BPF_LD | syscall.BPF_B | syscall.BPF_ABS, K: 13}, // the flags
		{Code: syscall.BPF_ALU | syscall.BPF_AND | syscall.BPF_K, K: syn | ack},
		{Code: syscall.BPF_JMP | syscall.BPF_JEQ | syscall.BPF_K, K: syn, Jt: 0, Jf: 1}, // a new attempt?
		{Code: syscall.BPF_RET | syscall.BPF_K, K: 0},                                   // drop it
		{Code: syscall.BPF_RET | syscall.BPF_K, K: 0xffffffff},                          // keep anything else whole
	}
	var attachErr error
	if err := raw.Control(func(fd uintptr) { attachErr = syscall.AttachLsf(int(fd), filter) }); err != nil {
		return err
	}
	return attachErr
}
