// Package check holds the offline checks of the Kubernetes manifests:
// kustomize renders them as a cluster would get them, every object decodes
// strictly (unknown fields are errors) into the real k8s.io/api types, and
// the invariants the service and the frontend depend on hold. It is a
// module of its own so that the service's go.mod stays the standard library
// and pgx.
package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is what kustomize makes of deploy/k8s, as a cluster would get
// it, each object decoded strictly into its k8s.io/api type, by name.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	netpols     map[string]*networkingv1.NetworkPolicy
	ingresses   map[string]*networkingv1.Ingress
}

// kustomization is the kustomization file's fields, decoded strictly.
type kustomization struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Labels     []json.RawMessage `json:"labels"`
	Resources  []string          `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// strict decodes one manifest's JSON into v, refusing unknown fields.
func strict(t *testing.T, what string, doc []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	raw, err := os.ReadFile("../kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	strict(t, "kustomization.yaml", js, &k)
	return k
}

// render runs kustomize (its Go API, as kubectl kustomize does) over
// deploy/k8s and decodes every object it yields.
func render(t *testing.T) rendered {
	t.Helper()
	readKustomization(t)
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "..")
	if err != nil {
		t.Fatalf("kustomize: %v", err)
	}
	r := rendered{map[string]*appsv1.Deployment{}, map[string]*corev1.Service{}, map[string]*corev1.ConfigMap{},
		map[string]*policyv1.PodDisruptionBudget{}, map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		map[string]*networkingv1.NetworkPolicy{}, map[string]*networkingv1.Ingress{}}
	for _, res := range rm.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		kind, name := res.GetKind(), res.GetName()
		what := kind + " " + name
		into := func(m any, v any) {
			strict(t, what, js, v)
			reflectSet(m, name, v)
		}
		switch kind {
		case "Deployment":
			into(r.deployments, &appsv1.Deployment{})
		case "Service":
			into(r.services, &corev1.Service{})
		case "ConfigMap":
			into(r.configMaps, &corev1.ConfigMap{})
		case "PodDisruptionBudget":
			into(r.pdbs, &policyv1.PodDisruptionBudget{})
		case "HorizontalPodAutoscaler":
			into(r.hpas, &autoscalingv2.HorizontalPodAutoscaler{})
		case "NetworkPolicy":
			into(r.netpols, &networkingv1.NetworkPolicy{})
		case "Ingress":
			into(r.ingresses, &networkingv1.Ingress{})
		default:
			t.Fatalf("unexpected kind %q", kind)
		}
	}
	for _, name := range []string{"backend-api", "backend-frontend", "backend-pgbouncer"} {
		if r.deployments[name] == nil || r.services[name] == nil || r.pdbs[name] == nil || r.netpols[name] == nil {
			t.Fatalf("%s lacks a Deployment, Service, PDB or NetworkPolicy", name)
		}
	}
	if r.configMaps["backend-config"] == nil || r.configMaps["backend-pgbouncer"] == nil || r.hpas["backend-api"] == nil || r.ingresses["backend"] == nil {
		t.Fatal("missing a ConfigMap, the API's HPA or the Ingress")
	}
	return r
}

// companions checks that name's Service, PodDisruptionBudget and
// NetworkPolicy select its Deployment's pods, and that the budget leaves
// room for a disruption.
func companions(t *testing.T, r rendered, name string) {
	t.Helper()
	d, svc, pdb, np := r.deployments[name], r.services[name], r.pdbs[name], r.netpols[name]
	sel := d.Spec.Selector.MatchLabels
	if fmt.Sprint(svc.Spec.Selector) != fmt.Sprint(sel) || fmt.Sprint(pdb.Spec.Selector.MatchLabels) != fmt.Sprint(sel) || fmt.Sprint(np.Spec.PodSelector.MatchLabels) != fmt.Sprint(sel) {
		t.Errorf("%s: selectors disagree: deployment %v service %v pdb %v netpol %v", name, sel, svc.Spec.Selector, pdb.Spec.Selector, np.Spec.PodSelector)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("%s: PDB minAvailable %v must leave room for a disruption of %d replicas", name, pdb.Spec.MinAvailable, *d.Spec.Replicas)
	}
}

// reflectSet puts v into the map m (a map[string]*T) under name.
func reflectSet(m any, name string, v any) {
	reflect.ValueOf(m).SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(v))
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

// The API: probes, drain, hardening, settings and secrets as files, and
// its Service, PDB, HPA and NetworkPolicy in agreement.
func TestAPIManifests(t *testing.T) {
	r := render(t)
	env := envExample(t)
	d := r.deployments["backend-api"]
	m := struct {
		configMap *corev1.ConfigMap
		hpa       *autoscalingv2.HorizontalPodAutoscaler
		netpol    *networkingv1.NetworkPolicy
	}{r.configMaps["backend-config"], r.hpas["backend-api"], r.netpols["backend-api"]}
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
	hardened(t, "the API", pod, c, 65532)
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
	for _, secret := range []string{"DATABASE_URL", "MIGRATION_DATABASE_URL", "SECRET_KEY", "SMTP_PASSWORD", "FIRST_SUPERUSER_PASSWORD"} {
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
	companions(t, r, "backend-api")
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
	// Egress: DNS to the cluster's resolver, the pooler, PostgreSQL (for
	// migrations) and the SMTP relay, each to a destination the operator
	// names, and nothing else.
	egress := egressPorts(t, m.netpol, "kube-dns", "backend-pgbouncer")
	if len(egress) != 4 || egress[53] == "" || egress[6432] == "" || egress[5432] == "" || egress[587] == "" {
		t.Errorf("NetworkPolicy egress ports %v, want DNS (53), the pooler (6432), PostgreSQL (5432) and SMTP (587) only", egress)
	}
}

// egressPorts is a NetworkPolicy's egress by port, each rule checked to
// name its destination: one host by address, or pods by one of the
// selectors given.
func egressPorts(t *testing.T, np *networkingv1.NetworkPolicy, selectors ...string) map[int32]string {
	t.Helper()
	egress := map[int32]string{}
	for _, rule := range np.Spec.Egress {
		if len(rule.To) == 0 || len(rule.Ports) == 0 {
			t.Errorf("%s: an egress rule reaches any destination or port: %+v", np.Name, rule)
			continue
		}
		for _, to := range rule.To {
			switch {
			case to.IPBlock != nil:
				if prefix, err := netip.ParsePrefix(to.IPBlock.CIDR); err != nil || prefix.Bits() < 24 {
					t.Errorf("%s: egress to %s: name the one host, not a range", np.Name, to.IPBlock.CIDR)
				}
			case to.PodSelector != nil && slices.Contains(selectors, selectorName(to.PodSelector.MatchLabels)):
			default:
				t.Errorf("%s: egress to %+v: only %v are reached by selector", np.Name, to, selectors)
			}
		}
		for _, p := range rule.Ports {
			egress[p.Port.IntVal] = fmt.Sprint(rule.To)
		}
	}
	return egress
}

// selectorName is what a pod selector picks: the DNS pods' k8s-app or one
// of ours by name.
func selectorName(labels map[string]string) string {
	if v := labels["k8s-app"]; v != "" {
		return v
	}
	return labels["app.kubernetes.io/name"]
}

// The pooler: the same discipline as the API, in transaction mode, reached
// only from the API's pods, reaching only PostgreSQL; and the budgets that
// let the API scale past PostgreSQL's max_connections hold, as hpa.yaml
// writes them out.
func TestPgBouncerManifests(t *testing.T) {
	r := render(t)
	d, api := r.deployments["backend-pgbouncer"], r.deployments["backend-api"]
	pooler, apiConfig := r.configMaps["backend-pgbouncer"], r.configMaps["backend-config"]
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	hardened(t, "the pooler", pod, c, 10001)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2: the pooler is on every request's path", d.Spec.Replicas)
	}
	ini := pgbouncerINI(t, pooler.Data["pgbouncer.ini"])
	if ini["pool_mode"] != "transaction" || apiConfig.Data["DB_POOLER"] != "transaction" {
		t.Errorf("pool_mode %q, the API's DB_POOLER %q: both must be transaction", ini["pool_mode"], apiConfig.Data["DB_POOLER"])
	}
	if !strings.Contains(ini["app.connect_query"], "SET plan_cache_mode = force_generic_plan") {
		t.Errorf("the database's connect_query %q: server connections must plan generically, as the API's own pool does", ini["app.connect_query"])
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		mounted = mounted || (vm.MountPath == "/etc/pgbouncer/pgbouncer.ini" && vm.SubPath == "pgbouncer.ini")
	}
	if !mounted {
		t.Error("the ConfigMap's pgbouncer.ini is not mounted over the image's")
	}
	if len(c.Ports) != 1 || fmt.Sprint(c.Ports[0].ContainerPort) != ini["listen_port"] {
		t.Errorf("ports %v, pgbouncer.ini listens on %s", c.Ports, ini["listen_port"])
	}
	// Clients: every API pod's pool, with the HPA at its most and a pod
	// surging, fits one pooler pod's max_client_conn.
	hpa := r.hpas["backend-api"]
	apiPods := int(hpa.Spec.MaxReplicas) + api.Spec.Strategy.RollingUpdate.MaxSurge.IntValue()
	clients := apiPods * atoi(t, apiConfig.Data["DB_MAX_OPEN_CONNS"])
	if clients > atoi(t, ini["max_client_conn"]) {
		t.Errorf("%d API pods x DB_MAX_OPEN_CONNS = %d clients > max_client_conn %s", apiPods, clients, ini["max_client_conn"])
	}
	// Servers: every pooler pod's max_db_connections (one surging), the
	// migrations of the pods the HPA may start in a period (one direct
	// connection each) and a reserve fit PostgreSQL's max_connections.
	if hpa.Spec.Behavior == nil || hpa.Spec.Behavior.ScaleUp == nil || len(hpa.Spec.Behavior.ScaleUp.Policies) == 0 {
		t.Fatal("the HPA does not bound how many pods start at once (behavior.scaleUp), so neither are the migrations' connections")
	}
	starting := api.Spec.Strategy.RollingUpdate.MaxSurge.IntValue()
	for _, p := range hpa.Spec.Behavior.ScaleUp.Policies {
		if p.Type != autoscalingv2.PodsScalingPolicy {
			t.Errorf("scale-up policy %+v: bound it in pods", p)
		}
		starting += int(p.Value)
	}
	const reserve = 10 // superuser_reserved_connections (3) and an operator's session or two
	poolerPods := int(*d.Spec.Replicas) + d.Spec.Strategy.RollingUpdate.MaxSurge.IntValue()
	servers := poolerPods*atoi(t, ini["max_db_connections"]) + starting + reserve
	if max := atoi(t, pooler.Data["POSTGRES_MAX_CONNECTIONS"]); servers > max {
		t.Errorf("%d pooler pods x max_db_connections + %d migrating + %d reserve = %d > POSTGRES_MAX_CONNECTIONS %d", poolerPods, starting, reserve, servers, max)
	}
	if ini["default_pool_size"] == "" || atoi(t, ini["default_pool_size"]) > atoi(t, ini["max_db_connections"]) {
		t.Errorf("default_pool_size %q above max_db_connections %q", ini["default_pool_size"], ini["max_db_connections"])
	}
	// The Service, PDB and NetworkPolicy agree with it; only the API's
	// pods reach it, and it reaches only DNS and PostgreSQL.
	companions(t, r, "backend-pgbouncer")
	np := r.netpols["backend-pgbouncer"]
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].PodSelector == nil ||
		fmt.Sprint(np.Spec.Ingress[0].From[0].PodSelector.MatchLabels) != fmt.Sprint(api.Spec.Selector.MatchLabels) ||
		len(np.Spec.Ingress[0].Ports) != 1 || fmt.Sprint(np.Spec.Ingress[0].Ports[0].Port.IntValue()) != ini["listen_port"] {
		t.Errorf("NetworkPolicy ingress %+v, want the API's pods to the pooler's port only", np.Spec.Ingress)
	}
	egress := egressPorts(t, np, "kube-dns")
	if len(egress) != 2 || egress[53] == "" || egress[5432] == "" {
		t.Errorf("NetworkPolicy egress ports %v, want DNS (53) and PostgreSQL (5432) only", egress)
	}
	// The database it lends is the host both NetworkPolicies let through.
	for _, policy := range []*networkingv1.NetworkPolicy{np, r.netpols["backend-api"]} {
		if host := ini["app.host"]; !strings.Contains(egressPorts(t, policy, "kube-dns", "backend-pgbouncer")[5432], host+"/32") {
			t.Errorf("pgbouncer.ini's database is at %s; %s lets PostgreSQL through to %s", host, policy.Name, egressPorts(t, policy, "kube-dns", "backend-pgbouncer")[5432])
		}
	}
}

// pgbouncerINI reads pgbouncer.ini's settings by key; a [databases] entry
// "name = host=… port=… connect_query='…'" becomes name.host, name.port,
// name.connect_query and so on.
func pgbouncerINI(t *testing.T, ini string) map[string]string {
	t.Helper()
	settings := map[string]string{}
	section := ""
	for _, line := range strings.Split(ini, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("pgbouncer.ini: %q", line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if section != "databases" {
				settings[k] = v
				continue
			}
			for _, kv := range regexp.MustCompile(`\w+=('[^']*'|\S+)`).FindAllString(v, -1) {
				dk, dv, _ := strings.Cut(kv, "=")
				settings[k+"."+dk] = strings.Trim(dv, "'")
			}
		}
	}
	return settings
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// The frontend: the same discipline as the API (non-root, read-only root,
// no capabilities, probes, a PDB, a NetworkPolicy), running the image's
// frontend.conf.
func TestFrontendManifests(t *testing.T) {
	r := render(t)
	d := r.deployments["backend-frontend"]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v, want maxUnavailable 0", d.Spec.Strategy)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	hardened(t, "the frontend", pod, c, 101)
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/nginx-health" {
			t.Errorf("%s probe %+v, want /nginx-health", name, p)
		}
	}
	// It runs the image's frontend.conf, which listens on the container's port.
	conf, err := os.ReadFile("../../../nginx/frontend.conf")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(append(c.Command, c.Args...), " ") != "nginx -c /etc/nginx/frontend.conf -g daemon off;" {
		t.Errorf("command %v %v, want nginx -c /etc/nginx/frontend.conf", c.Command, c.Args)
	}
	if len(c.Ports) != 1 || !strings.Contains(string(conf), fmt.Sprintf("listen %d;", c.Ports[0].ContainerPort)) {
		t.Errorf("ports %v: frontend.conf listens elsewhere", c.Ports)
	}
	// The read-only root leaves nginx /tmp for its pid and temporary files.
	tmp := false
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			tmp = tmp || (vm.MountPath == "/tmp" && v.Name == vm.Name && v.EmptyDir != nil)
		}
	}
	if !tmp {
		t.Error("no emptyDir at /tmp for nginx's pid and temporary files")
	}
	companions(t, r, "backend-frontend")
	np := r.netpols["backend-frontend"]
	// Only the ingress controller reaches it; it reaches nothing.
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) == 0 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != int(c.Ports[0].ContainerPort) {
		t.Errorf("NetworkPolicy ingress %+v, want the ingress controller to the http port only", np.Spec.Ingress)
	}
	if fmt.Sprint(np.Spec.PolicyTypes) != "[Ingress Egress]" || len(np.Spec.Egress) != 0 {
		t.Errorf("NetworkPolicy egress %v %+v, want none allowed", np.Spec.PolicyTypes, np.Spec.Egress)
	}
}

// The Ingress serves FRONTEND_URL's host over TLS, and routes the API to
// the API's Service and everything else to the frontend's, each by a port
// those Services have: one origin for the pages and the API.
func TestIngress(t *testing.T) {
	r := render(t)
	frontend, err := url.Parse(r.configMaps["backend-config"].Data["FRONTEND_URL"])
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{}
	for name, ing := range r.ingresses {
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName == "" {
			t.Errorf("Ingress %s names no ingress class", name)
		}
		if len(ing.Spec.TLS) != 1 || fmt.Sprint(ing.Spec.TLS[0].Hosts) != "["+frontend.Host+"]" || ing.Spec.TLS[0].SecretName == "" {
			t.Errorf("Ingress %s TLS %+v, want FRONTEND_URL's host %s", name, ing.Spec.TLS, frontend.Host)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.Host != frontend.Host || rule.HTTP == nil {
				t.Errorf("Ingress %s rule for host %q, want %s", name, rule.Host, frontend.Host)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				svc := r.services[p.Backend.Service.Name]
				if svc == nil {
					t.Errorf("Ingress %s sends %s to a Service that is not deployed: %s", name, p.Path, p.Backend.Service.Name)
					continue
				}
				found := false
				for _, sp := range svc.Spec.Ports {
					found = found || sp.Name == p.Backend.Service.Port.Name
				}
				if !found || p.Backend.Service.Port.Name != "http" {
					t.Errorf("Ingress %s sends %s to port %q of %s", name, p.Path, p.Backend.Service.Port.Name, svc.Name)
				}
				routes[p.Path] = p.Backend.Service.Name
			}
		}
	}
	if routes["/api"] != "backend-api" || routes["/"] != "backend-frontend" || routes["/api/v1/auth"] != "backend-api" {
		t.Errorf("routes %v, want /api and /api/v1/auth to the API, / to the frontend", routes)
	}
	if a := r.ingresses["backend-auth"].Annotations; a["nginx.ingress.kubernetes.io/limit-rps"] == "" {
		t.Errorf("sign-in has no edge rate: %v", a)
	}
	for name, ing := range r.ingresses {
		if ing.Annotations["nginx.ingress.kubernetes.io/limit-connections"] == "" {
			t.Errorf("Ingress %s has no per-client connection cap", name)
		}
	}
}

// Image names and tags are set in one place, kustomization.yaml's images:
// every container runs the registry name and tag given there, and the
// manifests themselves name the image without a tag.
func TestImagesComeFromKustomize(t *testing.T) {
	k := readKustomization(t)
	want := map[string]string{}
	for _, img := range k.Images {
		if img.NewName == "" || img.NewTag == "" {
			t.Errorf("images: %s needs newName and newTag", img.Name)
		}
		want[img.Name] = img.NewName + ":" + img.NewTag
	}
	for _, file := range k.Resources {
		src, _ := os.ReadFile("../" + file)
		for _, line := range strings.Split(string(src), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "image:" && (want[f[1]] == "" || strings.Contains(f[1], ":")) {
				t.Errorf("%s: %q; name an image of kustomization.yaml's images, without a tag", file, strings.TrimSpace(line))
			}
		}
	}
	r := render(t)
	for name, d := range r.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Image != want[name] {
				t.Errorf("%s runs %q, want %q from kustomization.yaml", name, c.Image, want[name])
			}
		}
	}
	if len(want) != 3 {
		t.Errorf("images: %v, want backend-api, backend-frontend and backend-pgbouncer", want)
	}
}

// hardened checks the discipline every pod here keeps: non-root as uid,
// seccomp, no service account token, a read-only root, no privilege
// escalation, no capabilities, and requests and limits.
func hardened(t *testing.T, what string, pod corev1.PodSpec, c corev1.Container, uid int64) {
	t.Helper()
	ps := pod.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != uid ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: pod security context %+v", what, ps)
	}
	cs := c.SecurityContext
	if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
		cs.Capabilities == nil || fmt.Sprint(cs.Capabilities.Drop) != "[ALL]" {
		t.Errorf("%s: container security context %+v", what, cs)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v", what, c.Resources)
	}
}
