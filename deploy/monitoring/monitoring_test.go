package monitoring

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/testutil/dlpsamples"
	"github.com/slapenir/slapenir/internal/testutil/poll"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// failing is an audit destination that can be made to fail.
type failing struct{ on atomic.Bool }

func (f *failing) Write(p []byte) (int, error) {
	if f.on.Load() {
		return 0, errors.New("disk full (test)")
	}
	return len(p), nil
}

const secret = "ghp_" + "MonitoringTestValue0123456789abcdefXY"

// TestDashboardAndRulesAgainstPrometheus: Prometheus scrapes a proxy
// carrying every kind of traffic the dashboard shows, and each of the
// dashboard's and the alert rules' expressions returns data.
func TestDashboardAndRulesAgainstPrometheus(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian: apt-get install prometheus); .ci/run installs it")
	}

	// The proxy: mTLS, a credential from the vault, dlp in report mode.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "echo "+r.Header.Get("Authorization")) // the real value comes back: redacted
	}))
	defer up.Close()
	creds, _ := proxytest.Credentials(t, secrets.Config{Credentials: []secrets.CredentialConfig{{Name: "github", Env: "GH", Hosts: []string{"127.0.0.1"}, Placeholder: "DUMMY_GITHUB_MONITORING", PlaintextHTTP: true}}},
		map[string]string{"GH": secret})
	cfg := proxytest.LoopbackConfig()
	cfg.DLP.Mode = config.DLPReport
	tlsOpts, ca := proxytest.DevMTLS(t)
	auditOut := &failing{}
	al, err := audit.Open(audit.Options{Stdout: auditOut})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(proxy.Options{Config: cfg, Audit: al, TLS: tlsOpts, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(t.Context())
	metrics := httptest.NewServer(srv.MetricsHandler())
	defer metrics.Close()

	b, err := ca.Issue(devca.Request{CommonName: "agent-7", Usage: devca.Client, Lifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	agent := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "https", Host: ln.Addr().String()}),
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{b.Chain[0].Raw}, PrivateKey: b.Key}}},
	}}
	get := func(target string, header ...string) {
		req, _ := http.NewRequest("GET", target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := agent.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	foreign := strings.Replace(up.URL, "127.0.0.1", "localhost", 1)
	traffic := func() {
		for range 30 {
			get(up.URL+"/ok", "Authorization", "Bearer DUMMY_GITHUB_MONITORING") // injected, redacted back
			get("http://sentry.io/")                                             // refused: telemetry
		}
		get(foreign+"/elsewhere", "Authorization", "Bearer DUMMY_GITHUB_MONITORING") // a placeholder left alone
		get(up.URL+"/dlp", "X-Note", dlpsamples.Secrets[0].Text)                     // a dlp finding (report)
		get("http://" + closedAddr + "/")                                            // an upstream error
	}
	// A tunnel held open for the tunnels panel.
	tc, err := tls.Dial("tcp", ln.Addr().String(), agent.Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	fmt.Fprintf(tc, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", strings.TrimPrefix(up.URL, "http://"))
	traffic()

	// Prometheus, on the committed rules, scraping the proxy every second
	// (and a target that is down, for SlapenirProxyDown).
	dir := t.TempDir()
	rules, _ := filepath.Abs("rules.yml")
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	promCfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: slapenir-proxy
    static_configs:
      - targets: [%q]
        labels: {pod: proxy-0}
      - targets: [%q]
        labels: {pod: proxy-gone}
`, rules, strings.TrimPrefix(metrics.URL, "http://"), downAddr)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(promCfg), 0o600)
	webLn, _ := net.Listen("tcp", "127.0.0.1:0")
	web := webLn.Addr().String()
	webLn.Close()
	var promLog syncbuf.Buffer
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &promLog, &promLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	query := func(expr string) (int, error) {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(expr))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Error  string
			Data   struct{ Result []json.RawMessage }
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		if r.Status != "success" {
			return 0, fmt.Errorf("%s: %s", r.Status, r.Error)
		}
		return len(r.Data.Result), nil
	}
	// Two scrapes, then the second round of traffic: increase() needs a
	// counter to move between samples.
	poll.Until(t, func() bool { n, _ := query(`count_over_time(up{pod="proxy-0"}[1m]) >= 3`); return n == 1 })
	traffic()
	auditOut.on.Store(true)
	get(up.URL + "/while-audit-fails") // refused 503: the record cannot be written
	auditOut.on.Store(false)

	exprs := map[string]string{}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	raw, _ := os.ReadFile("grafana-dashboard.json")
	if err := json.Unmarshal(raw, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			exprs[fmt.Sprintf("panel %q #%d", p.Title, i)] = tg.Expr
		}
	}
	alerts := 0
	var rf struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	raw, _ = os.ReadFile("rules.yml")
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
			alerts++
		}
	}
	for what, expr := range exprs {
		var n int
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if n, err = query(expr); err != nil || n > 0 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil || n == 0 {
			t.Errorf("%s: %s returned %d series (%v)", what, expr, n, err)
		}
	}
	// Prometheus loaded the rules and evaluates them without error.
	resp, err := http.Get("http://" + web + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Data struct {
			Groups []struct {
				Rules []struct{ Name, Health, LastError string }
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&rr)
	resp.Body.Close()
	loaded := 0
	for _, g := range rr.Data.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if loaded != alerts {
		t.Errorf("Prometheus loaded %d rules, rules.yml has %d", loaded, alerts)
	}
	if t.Failed() {
		t.Logf("prometheus log:\n%s", promLog.String())
	}
}

// TestScrapeConfigIsForTheChart: the in-cluster scrape configuration keeps
// exactly the chart's annotated proxy pods. (Debian's promtool is built
// without Kubernetes discovery, so the file is checked here by structure;
// the rules by promtool too when it is there.)
func TestScrapeConfigIsForTheChart(t *testing.T) {
	raw, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName        string           `json:"job_name"`
			KubernetesSD   []map[string]any `json:"kubernetes_sd_configs"`
			RelabelConfigs []struct {
				SourceLabels []string `json:"source_labels"`
				Regex        string
				Action       string
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.RuleFiles) != 1 || c.RuleFiles[0] != "rules.yml" || len(c.ScrapeConfigs) != 1 || c.ScrapeConfigs[0].JobName != "slapenir-proxy" {
		t.Fatalf("prometheus.yml: %+v", c)
	}
	keeps := map[string]string{}
	for _, r := range c.ScrapeConfigs[0].RelabelConfigs {
		if r.Action == "keep" {
			keeps[strings.Join(r.SourceLabels, ",")] = r.Regex
		}
	}
	if keeps["__meta_kubernetes_pod_label_app_kubernetes_io_name,__meta_kubernetes_pod_label_app_kubernetes_io_component"] != "slapenir;proxy" ||
		keeps["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] != "true" {
		t.Errorf("the scrape config does not keep the chart's proxy pods: %v", keeps)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "rules", "rules.yml").CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	}
}
