package helm

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/initconf"
	"github.com/slapenir/slapenir/internal/testutil/gobin"
)

// helmTool is the helm the chart is tested with, built from the module
// proxy (SLAPENIR_HELM_BIN names one to use instead).
var helmTool = gobin.Tool{Name: "helm", Package: "helm.sh/helm/v3/cmd/helm", Version: "v3.21.4", Env: "SLAPENIR_HELM_BIN"}

// kubeVersion is the cluster version templates are rendered for (the
// chart needs 1.28 for the pod-index label).
const kubeVersion = "1.31.0"

// rendered is one values file's objects, decoded strictly.
type rendered struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	policies     map[string]*networkingv1.NetworkPolicy
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pvcs         map[string]*corev1.PersistentVolumeClaim
}

// valuesFiles are the files every check runs with: the defaults, a fleet
// (3 proxies, 200 agents, roles, a credential) and monitoring on.
var valuesFiles = []string{"", "values/fleet.yaml", "values/monitoring.yaml"}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(gobin.Binary(t, helmTool), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func render(t *testing.T, values string) *rendered {
	t.Helper()
	args := []string{"template", "rel", "./slapenir", "--namespace", "agents", "--kube-version", kubeVersion}
	lint := []string{"lint", "--strict", "./slapenir", "--kube-version", kubeVersion}
	if values != "" {
		args = append(args, "-f", values)
		lint = append(lint, "-f", values)
	}
	helm(t, lint...)
	out := helm(t, args...)
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, policies: map[string]*networkingv1.NetworkPolicy{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, pvcs: map[string]*corev1.PersistentVolumeClaim{},
	}
	for _, doc := range strings.Split(string(out), "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("a rendered document is not YAML: %v\n%s", err, doc)
		}
		var obj interface{ GetName() string }
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			obj = strictInto(t, doc, r.deployments)
		case "apps/v1 StatefulSet":
			obj = strictInto(t, doc, r.statefulSets)
		case "v1 Service":
			obj = strictInto(t, doc, r.services)
		case "v1 ConfigMap":
			obj = strictInto(t, doc, r.configMaps)
		case "v1 Secret":
			obj = strictInto(t, doc, r.secrets)
		case "networking.k8s.io/v1 NetworkPolicy":
			obj = strictInto(t, doc, r.policies)
		case "policy/v1 PodDisruptionBudget":
			obj = strictInto(t, doc, r.pdbs)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			obj = strictInto(t, doc, r.hpas)
		case "v1 PersistentVolumeClaim":
			obj = strictInto(t, doc, r.pvcs)
		default:
			t.Fatalf("an object of unexpected kind %s %s:\n%s", tm.APIVersion, tm.Kind, doc)
		}
		if obj.GetName() == "" {
			t.Fatalf("an object without a name:\n%s", doc)
		}
	}
	return r
}

// strictInto decodes doc into a new T, failing on any field the type
// does not have, and files it by name.
func strictInto[T any, P interface {
	*T
	GetName() string
}](t *testing.T, doc string, into map[string]P) P {
	t.Helper()
	p := P(new(T))
	if err := yaml.UnmarshalStrict([]byte(doc), p); err != nil {
		t.Fatalf("strict decoding into %T: %v\n%s", p, err, doc)
	}
	if _, dup := into[p.GetName()]; dup {
		t.Fatalf("two %T named %s", p, p.GetName())
	}
	into[p.GetName()] = p
	return p
}

const full = "rel-slapenir"

func TestChartRendersAndValidates(t *testing.T) {
	for _, v := range valuesFiles {
		t.Run(name(v), func(t *testing.T) {
			r := render(t, v)
			for _, want := range []string{full + "-ca", full + "-proxy"} {
				if r.deployments[want] == nil {
					t.Errorf("no Deployment %s", want)
				}
			}
			if r.statefulSets[full+"-agent"] == nil || r.pvcs[full+"-ca-data"] == nil {
				t.Fatal("no agent StatefulSet or CA volume")
			}
			checkPods(t, r)
			checkSecretsStayPut(t, r)
			checkServicesSelect(t, r)
			checkProbes(t, r)
			checkNetworkPolicies(t, r, v == "values/monitoring.yaml")
			checkConfigs(t, r)
		})
	}
}

func name(v string) string {
	if v == "" {
		return "defaults"
	}
	return strings.TrimSuffix(filepath.Base(v), ".yaml")
}

// podSpecs are every pod template of the release, by workload name.
func podSpecs(r *rendered) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for n, d := range r.deployments {
		out[n] = &d.Spec.Template
	}
	for n, s := range r.statefulSets {
		out[n] = &s.Spec.Template
	}
	return out
}

// checkPods: no service-account token, every container non-root with a
// read-only root (but the agent's own, whose tools write to its home) and
// no capabilities, but the agents' enforce step, which has NET_ADMIN alone.
func checkPods(t *testing.T, r *rendered) {
	for n, p := range podSpecs(r) {
		if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
			t.Errorf("%s mounts a service-account token", n)
		}
		for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
			sc := c.SecurityContext
			// The agent's own container keeps a writable root: its tools
			// write to the home the image holds. Every other container's
			// root is read-only.
			readOnly := n == full+"-agent" && c.Name == "agent" || sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
			if sc == nil || !readOnly || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s/%s: want a read-only root, no privilege escalation and every capability dropped: %+v", n, c.Name, sc)
				continue
			}
			if c.Name == "enforce" {
				if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN"}) || n != full+"-agent" {
					t.Errorf("%s/enforce: capabilities %v, want NET_ADMIN alone, in the agent pod", n, sc.Capabilities.Add)
				}
				continue
			}
			if len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s/%s adds capabilities %v", n, c.Name, sc.Capabilities.Add)
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = p.Spec.SecurityContext.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				t.Errorf("%s/%s may run as root", n, c.Name)
			}
		}
	}
}

// checkSecretsStayPut: the provisioner's password is mounted only by the
// mint-token init steps and step-ca; the root's key only by step-ca; no
// agent or proxy container mounts either.
func checkSecretsStayPut(t *testing.T, r *rendered) {
	holders := map[string][]string{full + "-provisioner": {"mint-token", "step-ca"}, full + "-ca-root": {"step-ca"}}
	if len(r.secrets) != 2 || r.secrets[full+"-provisioner"] == nil || r.secrets[full+"-ca-root"] == nil {
		t.Fatalf("secrets %v", slices.Sorted(maps.Keys(r.secrets)))
	}
	for n, p := range podSpecs(r) {
		vol := map[string]string{} // volume name → secret
		for _, v := range p.Spec.Volumes {
			if v.Secret != nil {
				vol[v.Name] = v.Secret.SecretName
			}
		}
		for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
			for _, m := range c.VolumeMounts {
				secret, ok := vol[m.Name]
				if !ok {
					continue
				}
				if allowed, guarded := holders[secret]; guarded && !slices.Contains(allowed, c.Name) {
					t.Errorf("%s/%s mounts %s", n, c.Name, secret)
				}
				if !m.ReadOnly {
					t.Errorf("%s/%s mounts the secret %s writable", n, c.Name, secret)
				}
			}
			if c.Name == "agent" || c.Name == "proxy" {
				for _, e := range c.EnvFrom {
					if e.SecretRef != nil {
						t.Errorf("%s/%s takes environment from a Secret", n, c.Name)
					}
				}
			}
		}
	}
	// The agent's identity comes from its ordinal, via its token.
	sts := r.statefulSets[full+"-agent"]
	mint := sts.Spec.Template.Spec.InitContainers[0]
	if mint.Name != "mint-token" || mint.Args[0] != "agent-$(POD_INDEX)" || len(mint.Env) != 1 ||
		mint.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['apps.kubernetes.io/pod-index']" {
		t.Errorf("the agent's token step: %+v", mint)
	}
}

// checkServicesSelect: each Service selects the pods it names.
func checkServicesSelect(t *testing.T, r *rendered) {
	want := map[string]string{full + "-ca": full + "-ca", full + "-proxy": full + "-proxy", full + "-agents": full + "-agent"}
	pods := podSpecs(r)
	for svc, workload := range want {
		s := r.services[svc]
		if s == nil {
			t.Errorf("no Service %s", svc)
			continue
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pods[workload].Labels)) {
			t.Errorf("Service %s does not select the pods of %s", svc, workload)
		}
		for other, p := range pods {
			if other != workload && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
				t.Errorf("Service %s also selects the pods of %s", svc, other)
			}
		}
	}
}

// checkProbes: the proxy is probed at /health on its TLS port 3000 (the
// one endpoint answered without a client certificate), the CA at /health
// on 9000.
func checkProbes(t *testing.T, r *rendered) {
	for workload, port := range map[string]int32{full + "-proxy": 3000, full + "-ca": 9000} {
		c := r.deployments[workload].Spec.Template.Spec.Containers[0]
		named := map[string]int32{}
		for _, p := range c.Ports {
			named[p.Name] = p.ContainerPort
		}
		for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || named[p.HTTPGet.Port.StrVal] != port {
				t.Errorf("%s %s probe: %+v, want HTTPS /health on port %d", workload, kind, p, port)
			}
		}
	}
}

// checkNetworkPolicies: agents reach the proxy on 3000, the CA on 9000 and
// DNS, nothing else, and nothing reaches them; the proxy is reached by
// agents (and the monitoring namespace on its metrics port); the CA by
// agents and proxies on 9000. Each selector is checked against the pods'
// real labels.
func checkNetworkPolicies(t *testing.T, r *rendered, monitoring bool) {
	pods := podSpecs(r)
	agent, proxy, ca := pods[full+"-agent"].Labels, pods[full+"-proxy"].Labels, pods[full+"-ca"].Labels
	selects := func(sel *metav1.LabelSelector, l map[string]string) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(labels.Set(l))
	}
	peerName := func(p networkingv1.NetworkPolicyPeer) string {
		switch {
		case p.PodSelector != nil && selects(p.PodSelector, agent):
			return "agent"
		case p.PodSelector != nil && selects(p.PodSelector, proxy):
			return "proxy"
		case p.PodSelector != nil && selects(p.PodSelector, ca):
			return "ca"
		case p.NamespaceSelector != nil:
			return "ns:" + p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
		}
		return "?"
	}
	rules := func(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) []string {
		var out []string
		for _, p := range peers {
			for _, port := range ports {
				out = append(out, fmt.Sprintf("%s %s/%d", peerName(p), *port.Protocol, port.Port.IntVal))
			}
		}
		return out
	}
	got := map[string][2][]string{} // policy → ingress, egress
	for n, np := range r.policies {
		var in, out []string
		for _, rule := range np.Spec.Ingress {
			in = append(in, rules(rule.From, rule.Ports)...)
		}
		for _, rule := range np.Spec.Egress {
			out = append(out, rules(rule.To, rule.Ports)...)
		}
		got[n] = [2][]string{in, out}
		for who, l := range map[string]map[string]string{"agent": agent, "proxy": proxy, "ca": ca} {
			if selects(&np.Spec.PodSelector, l) != strings.HasSuffix(n, "-"+who) && !(who == "agent" && strings.HasSuffix(n, "-agents")) {
				t.Errorf("NetworkPolicy %s selecting the %s pods: %v", n, who, selects(&np.Spec.PodSelector, l))
			}
		}
	}
	dns := []string{"ns:kube-system UDP/53", "ns:kube-system TCP/53"}
	proxyIn := []string{"agent TCP/3000"}
	if monitoring {
		proxyIn = append(proxyIn, "ns:monitoring TCP/9090")
	}
	want := map[string][2][]string{
		full + "-agents": {nil, append([]string{"proxy TCP/3000", "ca TCP/9000"}, dns...)},
		full + "-proxy":  {proxyIn, nil},
		full + "-ca":     {{"agent TCP/9000", "proxy TCP/9000"}, dns},
	}
	for n, w := range want {
		g, ok := got[n]
		if !ok {
			t.Errorf("no NetworkPolicy %s", n)
			continue
		}
		if !slices.Equal(g[0], w[0]) || !slices.Equal(g[1], w[1]) {
			t.Errorf("NetworkPolicy %s: ingress %v egress %v, want %v %v", n, g[0], g[1], w[0], w[1])
		}
	}
	if types := r.policies[full+"-agents"].Spec.PolicyTypes; !slices.Contains(types, networkingv1.PolicyTypeIngress) || !slices.Contains(types, networkingv1.PolicyTypeEgress) {
		t.Errorf("the agents' policy governs %v, want ingress and egress", types)
	}
	if types := r.policies[full+"-proxy"].Spec.PolicyTypes; slices.Contains(types, networkingv1.PolicyTypeEgress) {
		t.Error("the proxy's egress is restricted; it must reach the world (its own policy decides)")
	}
}

// checkConfigs: the proxy's and the pods' service files the chart renders
// load without a problem in slapenir itself, and every credential file the
// config names is where a Secret is mounted.
func checkConfigs(t *testing.T, r *rendered) {
	pc := r.configMaps[full+"-proxy-config"]
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte(pc.Data["proxy.yaml"]), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the chart's proxy.yaml:\n%v\n%s", err, pc.Data["proxy.yaml"])
	}
	if !cfg.Audit.Stdout || cfg.Audit.File != "" {
		t.Error("the proxy's audit should go to stdout (one chain per replica, shipped by the cluster's log collector)")
	}
	proxy := r.deployments[full+"-proxy"].Spec.Template.Spec.Containers[0]
	for _, cr := range cfg.Secrets.Credentials {
		mounted := false
		for _, m := range proxy.VolumeMounts {
			if strings.HasPrefix(cr.File, m.MountPath+"/") {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("credential %s is read from %s, where no volume is mounted", cr.Name, cr.File)
		}
	}
	for _, cm := range []string{full + "-proxy-config", full + "-agent-config"} {
		if _, err := initconf.Parse(cm+"/services.yaml", []byte(r.configMaps[cm].Data["services.yaml"])); err != nil {
			t.Errorf("%s services.yaml: %v", cm, err)
		}
	}
}

// TestChartValuesThatMatter: the values files change what they say.
func TestChartValuesThatMatter(t *testing.T) {
	def, fleet, mon := render(t, ""), render(t, "values/fleet.yaml"), render(t, "values/monitoring.yaml")
	if def.hpas[full+"-proxy"] == nil || def.deployments[full+"-proxy"].Spec.Replicas != nil {
		t.Error("by default the proxy is autoscaled (and the Deployment leaves replicas to the autoscaler)")
	}
	if fleet.hpas[full+"-proxy"] != nil || *fleet.deployments[full+"-proxy"].Spec.Replicas != 3 ||
		*fleet.statefulSets[full+"-agent"].Spec.Replicas != 200 || fleet.pdbs[full+"-proxy"].Spec.MinAvailable.IntVal != 2 {
		t.Error("the fleet values: want 3 proxies without an autoscaler, 200 agents, at least 2 proxies through a disruption")
	}
	cfg, err := config.Parse("fleet", []byte(fleet.configMaps[full+"-proxy-config"].Data["proxy.yaml"]))
	if err != nil || len(cfg.Roles) != 1 || cfg.Roles[0].Name != "ci" || cfg.DLP.Mode != "report" || len(cfg.Secrets.Credentials) != 1 {
		t.Errorf("the fleet's proxy config: %v %+v", err, cfg)
	}
	if c, _ := config.Parse("mon", []byte(mon.configMaps[full+"-proxy-config"].Data["proxy.yaml"])); c == nil || c.Metrics.Listen != ":9090" {
		t.Error("monitoring on: the proxy should serve metrics on :9090")
	}
	if c, _ := config.Parse("def", []byte(def.configMaps[full+"-proxy-config"].Data["proxy.yaml"])); c == nil || c.Metrics.Listen != "" {
		t.Error("monitoring off: no metrics listener")
	}
	ports := func(r *rendered) []int32 {
		var out []int32
		for _, p := range r.services[full+"-proxy"].Spec.Ports {
			out = append(out, p.Port)
		}
		return out
	}
	if !slices.Equal(ports(mon), []int32{3000, 9090}) || !slices.Equal(ports(def), []int32{3000}) {
		t.Errorf("proxy Service ports: monitoring %v, default %v", ports(mon), ports(def))
	}
}
