package enforce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// DefaultCanaryPort is the port Check knocks on at the proxy's address when no
// canary is given: the proxy's host is routable from the agent, and nothing
// allows port 9 (discard), so an answer of any kind proves packets got out.
const DefaultCanaryPort = 9

// Probe says what Check dials.
type Probe struct {
	Proxy   []netip.AddrPort // at least one must accept a TCP connection
	Canary  netip.AddrPort   // must not: no answer at all, or a local refusal
	Timeout time.Duration    // per dial; the canary's dial waits this long
}

// DefaultCanary is the proxy's first address on DefaultCanaryPort.
func DefaultCanary(p Policy) (netip.AddrPort, error) {
	if len(p.Proxy) == 0 {
		return netip.AddrPort{}, errors.New("enforce: no proxy address to derive a canary from; give --canary host:port")
	}
	return netip.AddrPortFrom(p.Proxy[0].Addr(), DefaultCanaryPort), nil
}

// ErrCheckFailed is wrapped by every error of Check that means enforcement is
// not (provably) on, as opposed to a problem running the check.
var ErrCheckFailed = errors.New("enforcement check failed")

// Check proves from inside the target namespace that enforcement is on: the
// proxy accepts a TCP connection, and a direct connection to the canary gets
// no answer. It returns nil only when both hold; otherwise the error says
// which half failed.
//
// A refused connection does not count as blocked: the refusal (a TCP reset or
// an ICMP error) came from the canary's side, so the packet left. Only silence
// or a local refusal by the firewall (EPERM) proves the drop.
func Check(ctx context.Context, probe Probe, target Target) error {
	if err := validateProbe(probe); err != nil {
		return err
	}
	return inNetNS(target, func() error {
		if err := checkProxy(ctx, probe); err != nil {
			return err
		}
		return checkCanary(ctx, probe)
	})
}

func validateProbe(probe Probe) error {
	if len(probe.Proxy) == 0 {
		return errors.New("enforce: check needs the proxy's address (--proxy host:port)")
	}
	if !probe.Canary.IsValid() {
		return errors.New("enforce: check needs a canary address (--canary host:port) that the rules must block")
	}
	if containsAddrPort(probe.Proxy, probe.Canary) {
		return fmt.Errorf("enforce: canary %s is the proxy, which the rules allow; pick an address they must block", probe.Canary)
	}
	if probe.Timeout <= 0 {
		return fmt.Errorf("enforce: check timeout %v must be positive", probe.Timeout)
	}
	return nil
}

func checkProxy(ctx context.Context, probe Probe) error {
	var errs []error
	for _, ap := range probe.Proxy {
		conn, err := dial(ctx, ap, probe.Timeout)
		if err == nil {
			conn.Close()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: proxy half: the proxy is not reachable (%v); the agent would be cut off from everything; check --proxy and that the proxy runs", ErrCheckFailed, errors.Join(errs...))
}

func checkCanary(ctx context.Context, probe Probe) error {
	conn, err := dial(ctx, probe.Canary, probe.Timeout)
	switch {
	case err == nil:
		conn.Close()
		return fmt.Errorf("%w: canary half: a direct connection to %s succeeded, so egress is NOT locked down (run `slapenir enforce` in this namespace)", ErrCheckFailed, probe.Canary)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES), isTimeout(err):
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: canary half: %s refused the connection, so the packet left this namespace: egress is NOT locked down (run `slapenir enforce` in this namespace)", ErrCheckFailed, probe.Canary)
	default:
		return fmt.Errorf("%w: canary half is inconclusive: dialing %s failed with %v before the firewall could decide; pick a canary routable from the agent (e.g. the proxy's host on an unused port)", ErrCheckFailed, probe.Canary, err)
	}
}

func dial(ctx context.Context, ap netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", ap.String())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
