package policy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// listen starts a TCP listener on ip that accepts connections and reports
// the local address each one arrived at.
func listen(t *testing.T, ip string) (port int, arrived <-chan netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c.LocalAddr().(*net.TCPAddr).AddrPort()
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

// dialArrival dials host on port over IPv4 through d, which must succeed,
// and returns the address the connection arrived at on the listener.
func dialArrival(t *testing.T, d *Dialer, host string, port int, arrived <-chan netip.AddrPort) netip.Addr {
	t.Helper()
	conn, err := d.DialContext(context.Background(), "tcp4", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	return (<-arrived).Addr()
}

// dnsServer is a real DNS server on loopback UDP. Each A query is answered
// with the next entry of answers (the last one repeats), which is what a
// rebinding attacker's name server does; AAAA queries get no answer.
type dnsServer struct {
	answers  [][]netip.Addr
	aQueries atomic.Int32
}

func (s *dnsServer) start(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, ok := s.answer(buf[:n]); ok {
				pc.WriteTo(resp, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", addr)
		},
	}
}

func (s *dnsServer) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeA {
		i := int(s.aQueries.Add(1)) - 1
		if i >= len(s.answers) {
			i = len(s.answers) - 1
		}
		for _, ip := range s.answers[i] {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: ip.As4()})
		}
	}
	resp, err := b.Finish()
	return resp, err == nil
}

func TestDialerRefusesLocalhost(t *testing.T) {
	port, arrived := listen(t, "127.0.0.1")
	d := &Dialer{Policy: mustNew(t, Default())}
	conn, err := d.DialContext(context.Background(), "tcp", "localhost:"+strconv.Itoa(port))
	if err == nil {
		conn.Close()
		t.Fatal("dialed localhost through the default policy")
	}
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("error %v is not a *RefusedError", err)
	}
	if refused.Host != "localhost" || !refused.Addr.IsLoopback() || refused.Decision.Reason != ReasonPrivateAddress {
		t.Errorf("refusal = %+v", refused)
	}
	select {
	case a := <-arrived:
		t.Errorf("a connection reached the listener at %s", a)
	default:
	}
}

func TestDialerRefusesMetadataLiteral(t *testing.T) {
	d := &Dialer{Policy: mustNew(t, Default())}
	_, err := d.DialContext(context.Background(), "tcp", "169.254.169.254:80")
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Decision.Reason != ReasonMetadataAddress {
		t.Fatalf("dial to the metadata address: %v", err)
	}
	for _, want := range []string{`"169.254.169.254"`, "metadata_address", "private_allow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestDialerAllowsPrivateAllowHost(t *testing.T) {
	port, arrived := listen(t, "127.0.0.1")
	cfg := Default()
	cfg.PrivateAllow = []string{"localhost"}
	d := &Dialer{Policy: mustNew(t, cfg)}
	if a := dialArrival(t, d, "localhost", port, arrived); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("connection arrived at %s", a)
	}
}

// TestDialerDialsTheCheckedAddress: the name first resolves to an allowed
// address, then (as a rebinding attacker would arrange) to a refused one.
// The dialer must connect to the address it checked and ask DNS only once.
func TestDialerDialsTheCheckedAddress(t *testing.T) {
	port, arrived := listen(t, "127.0.0.1")
	dns := &dnsServer{answers: [][]netip.Addr{
		{netip.MustParseAddr("127.0.0.1")},
		{netip.MustParseAddr("127.0.0.2")},
	}}
	cfg := Default()
	cfg.PrivateAllow = []string{"127.0.0.1"}
	d := &Dialer{Policy: mustNew(t, cfg), Resolver: dns.start(t)}

	if a := dialArrival(t, d, "rebind.test", port, arrived); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("connection arrived at %s, not at the checked 127.0.0.1", a)
	}
	if n := dns.aQueries.Load(); n != 1 {
		t.Errorf("the dialer asked DNS %d times for one dial", n)
	}

	// The second answer is now the refused address: the next dial says so.
	_, err := d.DialContext(context.Background(), "tcp4", "rebind.test:"+strconv.Itoa(port))
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Addr != netip.MustParseAddr("127.0.0.2") || refused.Host != "rebind.test" {
		t.Fatalf("second dial: %v", err)
	}
}

// TestDialerSkipsRefusedAddresses: one answer with a refused and an allowed
// address dials only the allowed one. Nothing listens on 127.0.0.2, so a
// dial there would fail.
func TestDialerSkipsRefusedAddresses(t *testing.T) {
	port, arrived := listen(t, "127.0.0.1")
	dns := &dnsServer{answers: [][]netip.Addr{{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}}}
	cfg := Default()
	cfg.PrivateAllow = []string{"127.0.0.1/32"}
	d := &Dialer{Policy: mustNew(t, cfg), Resolver: dns.start(t)}
	if a := dialArrival(t, d, "mixed.test", port, arrived); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("connection arrived at %s", a)
	}
}

func TestDialerReportMode(t *testing.T) {
	port, arrived := listen(t, "127.0.0.1")
	cfg := Default()
	cfg.Mode = "report"
	d := &Dialer{Policy: mustNew(t, cfg)}
	// In report mode the dial goes through; the proxy notes the would-be
	// refusal from the connection's address (CheckAddr).
	dialArrival(t, d, "localhost", port, arrived)
}

func TestDialerErrors(t *testing.T) {
	d := &Dialer{Policy: mustNew(t, Config{PrivateAllow: []string{"127.0.0.0/8"}}), Timeout: 5 * time.Second}
	ctx := context.Background()
	if _, err := d.DialContext(ctx, "udp", "127.0.0.1:53"); err == nil || !strings.Contains(err.Error(), "only tcp") {
		t.Errorf("udp dial: %v", err)
	}
	if _, err := d.DialContext(ctx, "tcp", "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Errorf("dial without port: %v", err)
	}
	if _, err := d.DialContext(ctx, "tcp6", "127.0.0.1:80"); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("tcp6 dial of an IPv4 literal: %v", err)
	}
	// A closed port: the error names the host so a 502 can say which.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := d.DialContext(ctx, "tcp", addr); err == nil || !strings.Contains(err.Error(), `connecting to "127.0.0.1"`) {
		t.Errorf("dial to a closed port: %v", err)
	}
	dns := &dnsServer{answers: [][]netip.Addr{{}}}
	d.Resolver = dns.start(t)
	if _, err := d.DialContext(ctx, "tcp4", "nothing.test:80"); err == nil || !strings.Contains(err.Error(), `resolving "nothing.test"`) {
		t.Errorf("dial of a name without addresses: %v", err)
	}
}

// TestResolverAddressNotInErrors: a failed lookup names the host, never the
// proxy's own resolver ("on 10.0.0.2:53"), which is the proxy's network and
// ends up in the agent's 502.
func TestResolverAddressNotInErrors(t *testing.T) {
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		// Answer every query with SERVFAIL.
		buf := make([]byte, 512)
		for {
			n, from, err := ln.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 12 {
				reply := append([]byte(nil), buf[:n]...)
				reply[2] |= 0x80 // response
				reply[3] = reply[3]&0xf0 | 2
				ln.WriteTo(reply, from)
			}
		}
	}()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", ln.LocalAddr().String())
	}}
	d := &Dialer{Policy: mustNew(t, Config{}), Resolver: r}
	_, err = d.DialContext(context.Background(), "tcp", "no-such-host.example:80")
	if err == nil {
		t.Fatal("a failed lookup dialled")
	}
	if strings.Contains(err.Error(), " on ") || !strings.Contains(err.Error(), "no-such-host.example") {
		t.Fatalf("lookup error %q names the resolver, or not the host", err)
	}
}

// TestDialOfAParsedDestinationIsChecked: Dial, which takes the host and
// port a plan parsed instead of a string to parse again, refuses an
// address the policy refuses as DialContext does.
func TestDialOfAParsedDestinationIsChecked(t *testing.T) {
	pol, err := New(Default())
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Policy: pol}
	_, err = d.Dial(context.Background(), "tcp", "127.0.0.1", 9)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Decision.Reason != ReasonPrivateAddress {
		t.Fatalf("Dial to 127.0.0.1:9: %v, want a private_address refusal", err)
	}
	if _, err := d.Dial(context.Background(), "udp", "example.com", 53); err == nil || !strings.Contains(err.Error(), `cannot dial "example.com:53" over "udp"`) {
		t.Fatalf("Dial over udp: %v", err)
	}
}
