// Command fleet measures one proxy serving a fleet (issue 15): 1,000 agents,
// each with its own client certificate from one CA, against the real
// slapenir binary on loopback:
//
//   - mTLS handshakes per second, every agent connecting at once with a
//     fresh session;
//   - request latency through the proxy and directly to the origin, all
//     agents at once on keep-alive connections, each sending -rate requests
//     a second (rounds alternate, so both see the same machine), and the
//     difference at p50 and p99, with a tenth of the agents reading NDJSON
//     streams meanwhile;
//   - the proxy's RSS, heap, stacks and goroutines with every agent's
//     connection open and idle, per connection;
//   - that every audit record names the agent that sent the request.
//
// Usage: go run ./bench/fleet -bin ./slapenir   (bench/fleet.sh builds it)
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/bench/benchproc"
	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

func main() {
	bin := flag.String("bin", "./slapenir", "slapenir binary to measure")
	agents := flag.Int("agents", 1000, "agents, each with its own certificate")
	round := flag.Duration("round", 5*time.Second, "length of one latency round")
	rounds := flag.Int("rounds", 2, "latency rounds of each kind (direct, proxied), alternating")
	rate := flag.Float64("rate", 2, "requests a second each agent sends in the latency rounds (open loop, so latency is the proxy's, not a queue's; 0 = as fast as it can)")
	flag.Parse()
	raiseFileLimit()

	origin := httptest.NewServer(http.HandlerFunc(serveOrigin))
	defer origin.Close()
	p := benchproc.Start(*bin, `listen: %q
policy:
  private_allow: ["127.0.0.1/32"]
audit:
  file: %q
  stdout: false
limits:
  rate_per_second: 0
  max_tunnels: 4096
`, true, nil)
	defer p.Remove()
	rest := p.Stats()

	// One CA, one certificate per agent: the proxy's development CA.
	ca, err := devca.Ensure(p.State)
	if err != nil {
		fail(err)
	}
	t0 := time.Now()
	certs := make([]tls.Certificate, *agents)
	for i := range certs {
		b, err := ca.Issue(devca.Request{CommonName: fmt.Sprintf("agent-%d", i), Usage: devca.Client})
		if err != nil {
			fail(err)
		}
		certs[i] = tls.Certificate{Certificate: [][]byte{b.Chain[0].Raw}, PrivateKey: b.Key, Leaf: b.Chain[0]}
	}
	issued := time.Since(t0)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)

	fmt.Printf("# fleet: %d agents, one proxy (real binary, mTLS, audit to a file), loopback\n\n", *agents)
	fmt.Printf("| measure | value |\n|---|---:|\n")
	fmt.Printf("| %d client certificates issued | %.2f s |\n", *agents, issued.Seconds())

	// Handshakes: every agent at once, a fresh session each.
	var wg sync.WaitGroup
	var hsFail atomic.Int64
	t0 = time.Now()
	for i := range *agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.Dial("tcp", p.Addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{certs[i]}, ServerName: "localhost"})
			if err != nil {
				hsFail.Add(1)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	hs := time.Since(t0)
	fmt.Printf("| mTLS handshakes, all %d agents at once | %.0f /s (%d failed) |\n", *agents, float64(*agents)/hs.Seconds(), hsFail.Load())

	// Latency rounds, alternating; a tenth of the agents stream.
	proxied := make([]*http.Client, *agents)
	direct := make([]*http.Client, *agents)
	for i := range *agents {
		proxied[i] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			Proxy:               http.ProxyURL(&url.URL{Scheme: "https", Host: p.Addr}),
			TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{certs[i]}, ServerName: "localhost"},
			MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Hour,
		}}
		direct[i] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Hour}}
	}
	// Every agent's connection is set up (handshake included) before the
	// rounds: they measure requests, the handshakes were measured above.
	for _, set := range [][]*http.Client{direct, proxied} {
		for i := range set {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, err := set[i].Get(origin.URL + "/r"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
	}
	var lat [2][]time.Duration
	var streams, streamFail, reqFail atomic.Int64
	for r := range 2 * *rounds {
		kind := r % 2 // 0 direct, 1 proxied
		clients := direct
		if kind == 1 {
			clients = proxied
		}
		var mu sync.Mutex
		deadline := time.Now().Add(*round)
		for i := range *agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				var gap time.Duration
				if *rate > 0 {
					gap = time.Duration(float64(time.Second) / *rate)
					// Spread the agents over one gap, so they do not fire together.
					time.Sleep(time.Duration(i) * gap / time.Duration(*agents))
				}
				next := time.Now()
				for time.Now().Before(deadline) {
					if gap > 0 {
						time.Sleep(time.Until(next))
						next = next.Add(gap)
					}
					if i%10 == 0 {
						if readStream(clients[i], fmt.Sprintf("%s/a/%d/stream", origin.URL, i)) {
							streams.Add(1)
						} else {
							streamFail.Add(1)
						}
						continue
					}
					t := time.Now()
					resp, err := clients[i].Get(fmt.Sprintf("%s/a/%d/r", origin.URL, i))
					if err != nil {
						reqFail.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						reqFail.Add(1)
						continue
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat[kind] = append(lat[kind], mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	for k := range lat {
		slices.Sort(lat[k])
	}
	pct := func(k int, q float64) time.Duration { return lat[k][int(q*float64(len(lat[k])-1))] }
	fmt.Printf("| requests at %g/s per agent, direct / proxied (%d rounds of %s each, alternating) | %d / %d (%d failed) |\n", *rate, *rounds, *round, len(lat[0]), len(lat[1]), reqFail.Load())
	fmt.Printf("| p50 latency, direct → proxied | %s → %s (+%s) |\n", ms(pct(0, .5)), ms(pct(1, .5)), ms(pct(1, .5)-pct(0, .5)))
	fmt.Printf("| p99 latency, direct → proxied | %s → %s (+%s) |\n", ms(pct(0, .99)), ms(pct(1, .99)), ms(pct(1, .99)-pct(0, .99)))
	fmt.Printf("| NDJSON streams read whole, both kinds (a tenth of the agents) | %d (%d broken) |\n", streams.Load(), streamFail.Load())

	// Every agent's connection open and idle.
	for _, c := range proxied {
		resp, err := c.Get(origin.URL + "/r")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	time.Sleep(time.Second)
	idle := p.Stats()
	per := func(a, b int64) string { return fmt.Sprintf("%.1f KB", float64(a-b)/float64(*agents)/1000) }
	fmt.Printf("| at rest: RSS, goroutines | %s, %d |\n", benchproc.MiB(rest.RSS), rest.Goroutines)
	fmt.Printf("| %d idle agent connections: RSS, goroutines | %s, %d |\n", *agents, benchproc.MiB(idle.RSS), idle.Goroutines)
	fmt.Printf("| per idle agent connection: heap + stacks in use, RSS | %s, %s |\n", per(idle.Heap+idle.Stack, rest.Heap+rest.Stack), per(idle.RSS, rest.RSS))

	// Every record names the agent whose certificate sent it.
	for _, c := range proxied {
		c.CloseIdleConnections()
	}
	p.Stop()
	checked, wrong := checkIdentities(p.AuditFile())
	fmt.Printf("| audit records checked for the sender's identity | %d (%d wrong) |\n", checked, wrong)
	if wrong > 0 || hsFail.Load() > 0 {
		fail(fmt.Sprintf("%d records with the wrong identity, %d handshakes failed", wrong, hsFail.Load()))
	}
}

func serveOrigin(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/stream") {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range 10 {
			fmt.Fprintf(w, "{\"token\":%d}\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		io.WriteString(w, "{\"done\":true}\n")
		return
	}
	io.WriteString(w, strings.Repeat("x", 1024))
}

func readStream(c *http.Client, u string) bool {
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	last := ""
	for sc.Scan() {
		lines++
		last = sc.Text()
	}
	return sc.Err() == nil && lines == 11 && last == `{"done":true}`
}

var agentPath = regexp.MustCompile(`^/a/(\d+)/`)

// checkIdentities reads the audit log and counts the records of agent
// requests, and those whose identity is not the agent the path names.
func checkIdentities(file string) (checked, wrong int) {
	f, err := os.Open(file)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			break
		}
		m := agentPath.FindStringSubmatch(r.Path)
		if m == nil || r.Phase != "" {
			continue
		}
		checked++
		if r.Identity != "agent-"+m[1] {
			wrong++
		}
	}
	return checked, wrong
}

// raiseFileLimit lifts the soft limit on open files to the hard one: the
// run holds thousands of sockets.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

var fail = benchproc.Fail
