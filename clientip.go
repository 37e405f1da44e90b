package main

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address a request comes from: the TCP peer, unless the
// peer is a trusted proxy; then the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. Entries left of that were written by the
// client and are never believed, nor are X-Real-IP or True-Client-IP.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	addr, ok := parseHop(r.RemoteAddr) // net/http's form is addr:port; a bare address is taken too
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(addr, trusted) {
		return peerText(r.RemoteAddr, addr)
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, ok := parseHop(parts[j])
			if !ok {
				return addr.String() // a malformed hop: nothing left of it can be trusted
			}
			if !isTrusted(hop, trusted) {
				return hop.String()
			}
			addr = hop
		}
	}
	return addr.String()
}

// peerText is addr as text. The peer's own text is returned when it is
// already that canonical form (an IPv4 peer always is), so the usual case
// costs no allocation.
func peerText(remoteAddr string, addr netip.Addr) string {
	var buf [64]byte
	text := addr.AppendTo(buf[:0])
	host := remoteAddr
	if i := strings.LastIndexByte(remoteAddr, ':'); i >= 0 {
		host = strings.TrimSuffix(strings.TrimPrefix(remoteAddr[:i], "["), "]")
	}
	if host == string(text) {
		return host
	}
	return string(text)
}

// parseHop reads an address with or without a port. The likely form is
// tried first: a failed parse builds an error, and the TCP peer, on every
// request, is always addr:port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	withPort := strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1
	for range 2 {
		if withPort {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				return ap.Addr().Unmap().WithZone(""), true
			}
		} else if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone(""), true
		}
		withPort = !withPort
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientNetwork is the network a client address stands for: an IPv4
// address as it is, an IPv6 address by its /64, since one host is usually
// handed a whole /64. Rate limits, known login networks, hashing turns and
// audit summaries are all kept per client network.
func clientNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
