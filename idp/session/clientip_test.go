package session

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	n := Networks{Trusted: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}}
	const proxy = "10.0.0.1:5000"
	for _, tc := range []struct {
		name   string
		remote string
		xff    []string // one element per header line
		want   string
	}{
		{"direct peer", "198.51.100.7:40000", nil, "198.51.100.7"},
		{"untrusted peer: header ignored", "198.51.100.7:40000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"trusted peer without header", proxy, nil, "10.0.0.1"},
		{"one hop", proxy, []string{"198.51.100.7"}, "198.51.100.7"},
		{"IPv4 hop with a port", proxy, []string{"198.51.100.7:443"}, "198.51.100.7"},
		{"IPv6 hop", proxy, []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv6 hop with a port", proxy, []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6 hop in brackets", proxy, []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"IPv6 hop with a zone", proxy, []string{"[2001:db8::1%eth0]:443"}, "2001:db8::1"},
		{"IPv4-mapped IPv6 hop", proxy, []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"IPv4-mapped IPv6 hop with a port", proxy, []string{"[::ffff:198.51.100.7]:443"}, "198.51.100.7"},
		{"IPv4-mapped trusted peer", "[::ffff:10.0.0.1]:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"spaces", proxy, []string{"  203.0.113.9 ,   198.51.100.7:443  "}, "198.51.100.7"},
		{"client's forged hops left of the last untrusted", proxy, []string{"192.0.2.66, 198.51.100.7"}, "198.51.100.7"},
		{"trusted hops skipped", proxy, []string{"198.51.100.7, 10.1.2.3:8443, [fd00::2]:443"}, "198.51.100.7"},
		{"several headers", proxy, []string{"192.0.2.66", "198.51.100.7:443", "10.1.2.3"}, "198.51.100.7"},
		{"garbage hop: the proxy", proxy, []string{"unknown"}, "10.0.0.1"},
		{"garbage after a trusted hop: that hop", proxy, []string{"198.51.100.7, garbage, 10.1.2.3"}, "10.1.2.3"},
		{"bad port: garbage", proxy, []string{"198.51.100.7:99999"}, "10.0.0.1"},
		{"empty header", proxy, []string{""}, "10.0.0.1"},
		{"only brackets", proxy, []string{"[]"}, "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := n.ClientIP(r); got != netip.MustParseAddr(tc.want) {
				t.Errorf("ClientIP = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestClientIPHopsWithPortKeepUsersApart(t *testing.T) {
	n := Networks{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	nets := map[string]bool{}
	for _, hop := range []string{"198.51.100.7:443", "203.0.113.9:443", "[2001:db8::1]:443"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:5000"
		r.Header.Set("X-Forwarded-For", hop)
		nets[n.Of(n.ClientIP(r))] = true
	}
	if len(nets) != 3 || nets["10.0.0.0/24"] {
		t.Errorf("networks %v: want three, none the proxy's", nets)
	}
}
