package netguard

import (
	"net"
	"net/netip"
	"testing"
)

// Ensure that IPv4 addresses are counted one by one, IPv6 per /64, and an
// IPv4-mapped IPv6 address as its IPv4 address.
func TestKeyOf_Groups(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"10.0.0.1", "10.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::9"},
		{"fe80::1%eth0", "fe80::2%eth1"},
	} {
		if ka, kb := key(t, tc.a), key(t, tc.b); ka != kb {
			t.Errorf("%s (%v) and %s (%v) are counted apart, want together", tc.a, ka, tc.b, kb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"10.0.0.1", "10.0.0.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"10.0.0.1", "::ffff:10.0.0.2"},
	} {
		if ka, kb := key(t, tc.a), key(t, tc.b); ka == kb {
			t.Errorf("%s and %s are counted together (%v), want apart", tc.a, tc.b, ka)
		}
	}
}

// Ensure that keys print as a metric or a log would want them, and that
// every kind of net.Addr gets one.
func TestKeyOf_Forms(t *testing.T) {
	for addr, want := range map[net.Addr]string{
		&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5}:              "192.0.2.7",
		&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5}:       "192.0.2.7",
		&net.TCPAddr{IP: net.ParseIP("2001:db8:a:b:c:d:e:f"), Port: 5}:   "2001:db8:a:b::/64",
		&net.UDPAddr{IP: net.ParseIP("2001:db8:a:b:c:d:e:f"), Port: 5}:   "2001:db8:a:b::/64",
		&net.UnixAddr{Name: "/run/hearth.sock", Net: "unix"}:             "non-ip",
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5, Zone: "wlan0"}: "fe80::/64",
	} {
		if got := KeyOf(addr).String(); got != want {
			t.Errorf("KeyOf(%v) = %q, want %q", addr, got, want)
		}
	}
	if KeyOf(nil) != KeyOf(&net.UnixAddr{Name: "x"}) {
		t.Error("a nil address is not in the non-IP group")
	}
}

func key(t *testing.T, s string) Key {
	t.Helper()
	ip, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return KeyOfIP(ip)
}
