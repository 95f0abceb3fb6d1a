package redis

import (
	"slices"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		o, err := parseURL("rediss://u:p@cache.internal:6380/2?dial_timeout=3s")
		if err != nil {
			t.Fatal(err)
		}
		if o.simple == nil || o.cluster != nil || o.failover != nil {
			t.Fatalf("not a single-server client: %+v", o)
		}
		if o.simple.Addr != "cache.internal:6380" || o.simple.DB != 2 || o.simple.Username != "u" ||
			o.simple.Password != "p" || o.simple.TLSConfig == nil {
			t.Fatalf("options = %+v", o.simple)
		}
	})
	t.Run("unix", func(t *testing.T) {
		o, err := parseURL("unix:///run/redis.sock?db=1")
		if err != nil || o.simple == nil || o.simple.Network != "unix" || o.simple.DB != 1 {
			t.Fatalf("parseURL = %+v, %v", o.simple, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		o, err := parseURL("redis://u:p@n1:7000?addr=n2:7000&addr=n3:7000")
		if err != nil {
			t.Fatal(err)
		}
		if o.cluster == nil || o.simple != nil || o.failover != nil {
			t.Fatalf("not a cluster client: %+v", o)
		}
		if !slices.Equal(o.cluster.Addrs, []string{"n1:7000", "n2:7000", "n3:7000"}) || o.cluster.Password != "p" {
			t.Fatalf("options = %+v", o.cluster)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		o, err := parseURL("redis://su:sp@s1:26379/3?master_name=main&addr=s2:26379&password=rp")
		if err != nil {
			t.Fatal(err)
		}
		if o.failover == nil || o.simple != nil || o.cluster != nil {
			t.Fatalf("not a sentinel client: %+v", o)
		}
		f := o.failover
		if f.MasterName != "main" || !slices.Equal(f.SentinelAddrs, []string{"s1:26379", "s2:26379"}) ||
			f.SentinelPassword != "sp" || f.Password != "rp" || f.DB != 3 {
			t.Fatalf("options = %+v", f)
		}
	})
}
