// Package check holds the offline checks of the Kubernetes manifests: every
// manifest decodes strictly (unknown fields are errors) into the real
// k8s.io/api types, and the invariants the service depends on hold. It is a
// module of its own so that the service's go.mod stays the standard library
// and pgx.
package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	netpol     *networkingv1.NetworkPolicy
}

// strict decodes one manifest's JSON into v, refusing unknown fields.
func strict(t *testing.T, file string, doc []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func load(t *testing.T) manifests {
	t.Helper()
	var kust struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Labels     []json.RawMessage `json:"labels"`
		Resources  []string          `json:"resources"`
	}
	raw, err := os.ReadFile("../kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	strict(t, "kustomization.yaml", js, &kust)
	var m manifests
	for _, file := range kust.Resources {
		raw, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range strings.Split(string(raw), "\n---") {
			js, err := yaml.YAMLToJSON([]byte(part))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			var meta struct{ Kind string }
			json.Unmarshal(js, &meta)
			switch meta.Kind {
			case "Deployment":
				m.deployment = &appsv1.Deployment{}
				strict(t, file, js, m.deployment)
			case "Service":
				m.service = &corev1.Service{}
				strict(t, file, js, m.service)
			case "ConfigMap":
				m.configMap = &corev1.ConfigMap{}
				strict(t, file, js, m.configMap)
			case "PodDisruptionBudget":
				m.pdb = &policyv1.PodDisruptionBudget{}
				strict(t, file, js, m.pdb)
			case "HorizontalPodAutoscaler":
				m.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
				strict(t, file, js, m.hpa)
			case "NetworkPolicy":
				m.netpol = &networkingv1.NetworkPolicy{}
				strict(t, file, js, m.netpol)
			default:
				t.Fatalf("%s: unexpected kind %q", file, meta.Kind)
			}
		}
	}
	if m.deployment == nil || m.service == nil || m.configMap == nil || m.pdb == nil || m.hpa == nil || m.netpol == nil {
		t.Fatalf("missing manifests: %+v", m)
	}
	return m
}

// envExample is the service's documented production settings.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../../.env.production.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

func duration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

func TestManifests(t *testing.T) {
	m := load(t)
	env := envExample(t)
	d := m.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/api/v1/health" {
		t.Errorf("readiness probe %+v, want /api/v1/health", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/api/v1/health/live" {
		t.Errorf("liveness probe %+v, want /api/v1/health/live", c.LivenessProbe)
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil {
		t.Error("no startup probe")
	}
	// The grace period covers the drain: SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT,
	// from the ConfigMap, else the documented defaults.
	setting := func(k string) string {
		if v, ok := m.configMap.Data[k]; ok {
			return v
		}
		return env[k]
	}
	drain := duration(t, setting("SHUTDOWN_DELAY")) + duration(t, setting("SHUTDOWN_TIMEOUT"))
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %v, want above the drain's %v", pod.TerminationGracePeriodSeconds, drain)
	}
	ps := pod.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != 65532 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", ps)
	}
	cs := c.SecurityContext
	if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
		cs.Capabilities == nil || fmt.Sprint(cs.Capabilities.Drop) != "[ALL]" {
		t.Errorf("container security context %+v", cs)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	// Settings: every ConfigMap key and env name is a documented variable;
	// secrets arrive as files.
	for k := range m.configMap.Data {
		if _, ok := env[k]; !ok {
			t.Errorf("ConfigMap key %s is not in .env.production.example", k)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != m.configMap.Name {
		t.Errorf("envFrom %+v, want the ConfigMap", c.EnvFrom)
	}
	var mount string
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				mount = vm.MountPath
			}
		}
	}
	files := map[string]bool{}
	for _, e := range c.Env {
		name := strings.TrimSuffix(e.Name, "_FILE")
		if _, ok := env[name]; !ok || !strings.HasSuffix(e.Name, "_FILE") || mount == "" || e.Value != mount+"/"+strings.ToLower(name) {
			t.Errorf("env %s=%s: secrets come as NAME_FILE, the key named for the variable in the mounted Secret (%s)", e.Name, e.Value, mount)
		}
		files[name] = true
	}
	kust, _ := os.ReadFile("../kustomization.yaml")
	for _, secret := range []string{"DATABASE_URL", "SECRET_KEY", "SMTP_PASSWORD", "FIRST_SUPERUSER_PASSWORD"} {
		if _, inConfig := m.configMap.Data[secret]; inConfig || !files[secret] {
			t.Errorf("%s, a secret: in the ConfigMap %v, read from the Secret %v", secret, inConfig, files[secret])
		}
		if !strings.Contains(string(kust), strings.ToLower(secret)) {
			t.Errorf("kustomization.yaml does not list the Secret's key %s", strings.ToLower(secret))
		}
	}
	// TRUSTED_PROXIES names the ingress, never a whole private range.
	for _, p := range strings.Split(m.configMap.Data["TRUSTED_PROXIES"], ",") {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			if a, aerr := netip.ParseAddr(strings.TrimSpace(p)); aerr == nil {
				prefix = netip.PrefixFrom(a, a.BitLen())
			} else {
				t.Fatalf("TRUSTED_PROXIES entry %q: %v", p, err)
			}
		}
		if prefix.Bits() < prefix.Addr().BitLen()-8 {
			t.Errorf("TRUSTED_PROXIES trusts %s, a range wider than an ingress's few addresses", prefix)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 || ports["metrics"] != 9464 {
		t.Errorf("container ports %v", ports)
	}
	// Service, PDB, HPA, NetworkPolicy agree with the Deployment.
	sel := d.Spec.Selector.MatchLabels
	if fmt.Sprint(m.service.Spec.Selector) != fmt.Sprint(sel) || fmt.Sprint(m.pdb.Spec.Selector.MatchLabels) != fmt.Sprint(sel) || fmt.Sprint(m.netpol.Spec.PodSelector.MatchLabels) != fmt.Sprint(sel) {
		t.Errorf("selectors disagree: deployment %v service %v pdb %v netpol %v", sel, m.service.Spec.Selector, m.pdb.Spec.Selector, m.netpol.Spec.PodSelector)
	}
	if m.pdb.Spec.MinAvailable == nil || m.pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PDB minAvailable %v must leave room for a disruption of %d replicas", m.pdb.Spec.MinAvailable, *d.Spec.Replicas)
	}
	if m.hpa.Spec.ScaleTargetRef.Name != d.Name || m.hpa.Spec.MinReplicas == nil || *m.hpa.Spec.MinReplicas < *d.Spec.Replicas {
		t.Errorf("HPA %+v", m.hpa.Spec)
	}
	ingressPorts := map[int]bool{}
	for _, rule := range m.netpol.Spec.Ingress {
		for _, p := range rule.Ports {
			ingressPorts[p.Port.IntValue()] = true
		}
		if len(rule.From) == 0 {
			t.Error("a NetworkPolicy ingress rule admits everyone")
		}
	}
	if !ingressPorts[8080] || !ingressPorts[9464] || len(ingressPorts) != 2 {
		t.Errorf("NetworkPolicy ingress ports %v, want 8080 (edge) and 9464 (monitoring) only", ingressPorts)
	}
	// Egress: DNS to the cluster's resolver, PostgreSQL and the SMTP relay,
	// each to a destination the operator names, and nothing else.
	egress := map[int32]string{}
	for _, rule := range m.netpol.Spec.Egress {
		if len(rule.To) == 0 || len(rule.Ports) == 0 {
			t.Errorf("a NetworkPolicy egress rule reaches any destination or port: %+v", rule)
			continue
		}
		for _, to := range rule.To {
			if to.IPBlock != nil {
				if prefix, err := netip.ParsePrefix(to.IPBlock.CIDR); err != nil || prefix.Bits() < 24 {
					t.Errorf("egress to %s: name the one host, not a range", to.IPBlock.CIDR)
				}
			} else if to.PodSelector == nil || to.PodSelector.MatchLabels["k8s-app"] != "kube-dns" {
				t.Errorf("egress to %+v: only DNS is reached by selector", to)
			}
		}
		for _, p := range rule.Ports {
			egress[p.Port.IntVal] = fmt.Sprint(rule.To)
		}
	}
	if len(egress) != 3 || egress[53] == "" || egress[5432] == "" || egress[587] == "" {
		t.Errorf("NetworkPolicy egress ports %v, want DNS (53), PostgreSQL (5432) and SMTP (587) only", egress)
	}
}

// kubectl, where installed, renders the kustomization as a cluster would.
func TestKustomizeRenders(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl is not installed; the manifests were decoded one by one")
		return
	}
	if out, err := exec.Command(kubectl, "kustomize", "..").CombinedOutput(); err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
}
