package regulate

import (
	"errors"
	"fmt"
	"time"
)

// Config holds every limit. DefaultConfig documents the defaults; the
// configuration file sets them as regulate.* (see README).
type Config struct {
	// FreeFailures is how many failures of one account from one network,
	// or from one known device, cost nothing. From then on each failure
	// makes the next attempt wait: BaseDelay after the first, doubling up
	// to MaxDelay.
	FreeFailures int
	BaseDelay    time.Duration
	MaxDelay     time.Duration
	// Window: an account × network or account × device count is forgotten
	// after Window without a failure. At least MaxDelay.
	Window time.Duration

	// MaxUnknown is how many consecutive failures of one account from
	// unknown devices (any network) are allowed (NIST SP 800-63B §5.2.2:
	// at most 100). Then unknown devices are refused until a success, an
	// Unlock, or UnknownWindow after the last of them; known devices are
	// not.
	MaxUnknown    int
	UnknownWindow time.Duration

	// NetworkFailures is how many failures from one network, across all
	// accounts, are allowed within NetworkWindow (counted from the first of
	// them) before that network's unknown devices are refused until the
	// window ends: password spraying. Known devices are not refused.
	NetworkFailures int
	NetworkWindow   time.Duration

	// IPv4Prefix and IPv6Prefix reduce a client address to its network.
	IPv4Prefix int
	IPv6Prefix int

	// DeviceTTL is how long a device stays known for an account after its
	// last success.
	DeviceTTL time.Duration

	// Requests is how many requests that create stored state (an
	// authorization request) one network may make within RequestWindow.
	Requests      int
	RequestWindow time.Duration
}

// DefaultConfig returns the documented defaults:
//
//	free_failures     5      then waits of 30s, 1m, 2m, 4m, 8m, 15m, 15m…
//	base_delay        30s
//	max_delay         15m
//	window            1h     a count is forgotten an hour after its last failure
//	max_unknown       100    consecutive failures from unknown devices (NIST)
//	unknown_window    24h
//	network_failures  500    failures from one network, all accounts, per 15m
//	network_window    15m
//	ipv4_prefix       24
//	ipv6_prefix       64
//	device_ttl        2160h  (90 days since the device's last success)
//	requests          3000   authorization requests per network per 5m
//	request_window    5m
func DefaultConfig() Config {
	return Config{
		FreeFailures:    5,
		BaseDelay:       30 * time.Second,
		MaxDelay:        15 * time.Minute,
		Window:          time.Hour,
		MaxUnknown:      100,
		UnknownWindow:   24 * time.Hour,
		NetworkFailures: 500,
		NetworkWindow:   15 * time.Minute,
		IPv4Prefix:      24,
		IPv6Prefix:      64,
		DeviceTTL:       90 * 24 * time.Hour,
		Requests:        3000,
		RequestWindow:   5 * time.Minute,
	}
}

// ErrConfig: a limit is out of range.
var ErrConfig = errors.New("regulate: invalid configuration")

// Validate reports every limit out of range at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s %s", ErrConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.FreeFailures < 0 {
		bad("FreeFailures", "must not be negative")
	}
	if c.BaseDelay <= 0 {
		bad("BaseDelay", "must be positive")
	}
	if c.MaxDelay < c.BaseDelay {
		bad("MaxDelay", "must be at least BaseDelay")
	}
	if c.Window < c.MaxDelay || c.Window <= 0 {
		bad("Window", "must be positive and at least MaxDelay")
	}
	if c.MaxUnknown < 1 {
		bad("MaxUnknown", "must be at least 1")
	}
	if c.UnknownWindow <= 0 {
		bad("UnknownWindow", "must be positive")
	}
	if c.NetworkFailures < 1 {
		bad("NetworkFailures", "must be at least 1")
	}
	if c.NetworkWindow <= 0 {
		bad("NetworkWindow", "must be positive")
	}
	if c.IPv4Prefix < 8 || c.IPv4Prefix > 32 {
		bad("IPv4Prefix", "must be between 8 and 32")
	}
	if c.IPv6Prefix < 32 || c.IPv6Prefix > 128 {
		bad("IPv6Prefix", "must be between 32 and 128")
	}
	if c.DeviceTTL <= 0 {
		bad("DeviceTTL", "must be positive")
	}
	if c.Requests < 1 {
		bad("Requests", "must be at least 1")
	}
	if c.RequestWindow < time.Second {
		bad("RequestWindow", "must be at least 1s")
	}
	return errors.Join(errs...)
}
