package enforce

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/enforce/enforcetest"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

// TestCheckFailsWithoutEnforcement runs Check in the current namespace, where
// nothing is enforced (loopback is always allowed), so each half that must
// fail does, with an error saying which.
func TestCheckFailsWithoutEnforcement(t *testing.T) {
	proxy := enforcetest.ServeHello(t, "127.0.0.1:0")
	open := enforcetest.ServeHello(t, "127.0.0.1:0")
	for _, tc := range []struct {
		name    string
		probe   Probe
		wantErr []string
	}{
		{"canary answers", Probe{Proxy: []netip.AddrPort{proxy}, Canary: open, Timeout: 5 * time.Second},
			[]string{"canary half", open.String(), "succeeded", "NOT locked down"}},
		{"canary refuses", Probe{Proxy: []netip.AddrPort{proxy}, Canary: closedPort(t), Timeout: 5 * time.Second},
			[]string{"canary half", "refused", "packet left"}},
		{"proxy down", Probe{Proxy: []netip.AddrPort{closedPort(t)}, Canary: open, Timeout: 5 * time.Second},
			[]string{"proxy half", "not reachable"}},
	} {
		err := Check(context.Background(), tc.probe, Target{})
		if !errors.Is(err, ErrCheckFailed) {
			t.Errorf("%s: Check = %v, want ErrCheckFailed", tc.name, err)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}

func TestCheckRejectsABadProbe(t *testing.T) {
	proxy := netip.MustParseAddrPort("10.0.0.3:3000")
	for _, tc := range []struct {
		probe Probe
		want  string
	}{
		{Probe{Canary: proxy, Timeout: time.Second}, "--proxy"},
		{Probe{Proxy: []netip.AddrPort{proxy}, Timeout: time.Second}, "--canary"},
		{Probe{Proxy: []netip.AddrPort{proxy}, Canary: proxy, Timeout: time.Second}, "is the proxy"},
		{Probe{Proxy: []netip.AddrPort{proxy}, Canary: netip.MustParseAddrPort("10.0.0.3:9")}, "timeout"},
	} {
		err := Check(context.Background(), tc.probe, Target{})
		if err == nil || errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v, want a usage error saying %q", tc.probe, err, tc.want)
		}
	}
}

func TestDefaultCanary(t *testing.T) {
	got, err := DefaultCanary(testPolicy())
	if err != nil || got != netip.MustParseAddrPort("10.0.0.3:9") {
		t.Errorf("DefaultCanary = %v, %v; want the proxy's address on port 9", got, err)
	}
	if _, err := DefaultCanary(Policy{}); err == nil {
		t.Error("DefaultCanary without a proxy succeeded")
	}
}

func TestRunCheckResolvesNamesOnce(t *testing.T) {
	proxy := enforcetest.ServeHello(t, "127.0.0.1:0")
	for _, tc := range []struct {
		proxy, canary, want string
	}{
		{"proxy.invalid:3000", "", `proxy name "proxy.invalid" does not resolve`},
		{proxy.String(), "canary.invalid:443", `canary name "canary.invalid" does not resolve`},
		// localhost resolves from /etc/hosts: the check runs, and fails, because
		// nothing is enforced in this namespace.
		{"localhost:" + strconv.Itoa(int(proxy.Port())), proxy.Addr().String() + ":1", "canary half"},
	} {
		var out bytes.Buffer
		err := Run(context.Background(), Options{
			Mode:     ModeCheck,
			Spec:     Spec{Proxy: tc.proxy},
			Canary:   tc.canary,
			Timeout:  5 * time.Second,
			Resolver: unanswered(t),
		}, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check --proxy %s --canary %q = %v, want an error saying %q", tc.proxy, tc.canary, err, tc.want)
		}
		if code := ExitCode(ModeCheck, err); code != ExitFailed {
			t.Errorf("exit code %d, want %d", code, ExitFailed)
		}
	}
}
