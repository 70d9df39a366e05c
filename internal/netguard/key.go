package netguard

import (
	"net"
	"net/netip"
)

// Key is the group a client address is counted in: an IPv4 address, or
// the /64 of an IPv6 address. One IPv6 host is given a whole /64 (SLAAC,
// privacy addresses), so counting per address would let one phone or one
// attacker appear as 2^64 clients.
type Key struct{ p netip.Prefix }

// KeyOf returns the group of a connection's remote address. An address
// that is not IP (a Unix socket) falls in one group of its own.
func KeyOf(addr net.Addr) Key {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case nil:
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	return KeyOfIP(ip)
}

// KeyOfIP returns the group of ip. An IPv4-mapped IPv6 address
// (::ffff:10.0.0.1, as a dual-stack listener reports IPv4 clients) is its
// IPv4 address.
func KeyOfIP(ip netip.Addr) Key {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return Key{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return Key{p}
}

// String is the IPv4 address, or the IPv6 /64 in CIDR form.
func (k Key) String() string {
	switch {
	case !k.p.IsValid():
		return "non-ip"
	case k.p.Addr().Is4():
		return k.p.Addr().String()
	}
	return k.p.String()
}
