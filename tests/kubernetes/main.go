// Command kubernetes validates deploy/kubernetes offline, against the real Kubernetes API types.
//
// Every document is decoded STRICTLY (unknown or misspelt fields fail) into its k8s.io/api type, then checked for
// what `kubectl apply --dry-run=client` would not catch and what our deployment relies on:
//   - names are valid DNS labels; workload selectors select their own pod template;
//   - every Service, HPA and PodDisruptionBudget points at a workload that exists, by labels or by name, and every
//     named targetPort is a container port of the selected pods;
//   - every container has CPU and memory requests and limits (requests <= limits), a pinned image, and the Collector
//     containers set GOMEMLIMIT below their memory limit;
//   - the Collector's --config file is mounted from a ConfigMap whose key is a file in collector-config/, and every
//     OTELCOL_* variable set on the container is one that config actually reads (a typo would silently be ignored).
//
// Usage: go run . <manifest dir> <collector-config dir>    (exit status 1 and one line per problem on failure)
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

type workload struct {
	kind, name, namespace string
	selector              *metav1.LabelSelector
	template              corev1.PodTemplateSpec
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

var (
	problems   []string
	envRef     = regexp.MustCompile(`\$\{env:([A-Za-z0-9_]+)`)
	configFlag = regexp.MustCompile(`^--config=(.+)$`)
)

func fail(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// goBytes parses a GOMEMLIMIT value (the Go runtime's syntax: a number with an optional B/KiB/MiB/GiB/TiB suffix).
func goBytes(v string) (int64, bool) {
	units := []struct {
		suffix string
		mul    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			var n int64
			if _, err := fmt.Sscanf(strings.TrimSuffix(v, u.suffix), "%d", &n); err != nil {
				return 0, false
			}
			return n * u.mul, true
		}
	}
	var n int64
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

func checkName(kind, name string) {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		fail("%s %q: invalid name: %s", kind, name, strings.Join(errs, "; "))
	}
}

func checkContainer(where string, c corev1.Container, pod corev1.PodSpec, configDir string) {
	if c.Image == "" || !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
		fail("%s: image %q is not pinned to a version", where, c.Image)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			fail("%s: %s request and limit are both required", where, r)
			continue
		}
		if req.Cmp(lim) > 0 {
			fail("%s: %s request %s above limit %s", where, r, req.String(), lim.String())
		}
	}
	// The Collector containers: the ones started with --config.
	var configPath string
	for _, a := range c.Args {
		if m := configFlag.FindStringSubmatch(a); m != nil {
			configPath = m[1]
		}
	}
	if configPath == "" {
		return
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	limit := c.Resources.Limits[corev1.ResourceMemory]
	if v, ok := env["GOMEMLIMIT"]; !ok {
		fail("%s: Collector container without GOMEMLIMIT", where)
	} else if n, ok := goBytes(v); !ok {
		fail("%s: GOMEMLIMIT %q is not a Go memory limit", where, v)
	} else if n >= limit.Value() || n < limit.Value()/2 {
		fail("%s: GOMEMLIMIT %s should be 50-99%% of limits.memory %s", where, v, limit.String())
	}
	// --config must be a file mounted from a ConfigMap key that is one of our shipped configs.
	var configText string
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(configPath, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			rel := strings.TrimPrefix(configPath, strings.TrimSuffix(m.MountPath, "/")+"/")
			for _, it := range v.ConfigMap.Items {
				if it.Path == rel {
					data, err := os.ReadFile(filepath.Join(configDir, it.Key))
					if err != nil {
						fail("%s: ConfigMap %s key %q is not a file in collector-config/", where, v.ConfigMap.Name, it.Key)
					}
					configText = string(data)
				}
			}
		}
	}
	if configText == "" {
		fail("%s: --config=%s is not mounted from a ConfigMap item of a shipped config", where, configPath)
		return
	}
	read := map[string]bool{}
	for _, m := range envRef.FindAllStringSubmatch(configText, -1) {
		read[m[1]] = true
	}
	for name := range env {
		if strings.HasPrefix(name, "OTELCOL_") && !read[name] {
			fail("%s: %s is set but the mounted config never reads it", where, name)
		}
	}
	mounted := map[string]bool{}
	for _, v := range pod.Volumes {
		mounted[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !mounted[m.Name] {
			fail("%s: volumeMount %q has no volume", where, m.Name)
		}
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil {
			fail("%s: Collector container needs HTTP readiness and liveness probes (health_check)", where)
			continue
		}
		if pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
			fail("%s: probe port %q is not a container port", where, pr.HTTPGet.Port.StrVal)
		}
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: validate <manifest dir> <collector-config dir>")
		os.Exit(2)
	}
	dir, configDir := os.Args[1], os.Args[2]
	var workloads []workload
	var services []corev1.Service
	var hpas []autoscalingv2.HorizontalPodAutoscaler
	var pdbs []policyv1.PodDisruptionBudget
	objects := 0
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	sort.Strings(files)
	listed := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fail("%s: %v", f, err)
			continue
		}
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			var k kustomization
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				fail("%s: %v", base, err)
			}
			for _, r := range k.Resources {
				listed[r] = true
			}
			continue
		}
		for i, doc := range splitDocs(data) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				fail("%s[%d]: %v", base, i, err)
				continue
			}
			where := fmt.Sprintf("%s[%d] %s", base, i, meta.Kind)
			strict := func(into any) bool {
				if err := yaml.UnmarshalStrict(bytes.TrimSpace(doc), into); err != nil {
					fail("%s: %v", where, err)
					return false
				}
				return true
			}
			objects++
			switch meta.APIVersion + "/" + meta.Kind {
			case "v1/Namespace":
				var o corev1.Namespace
				if strict(&o) {
					checkName("Namespace", o.Name)
				}
			case "apps/v1/Deployment":
				var o appsv1.Deployment
				if strict(&o) {
					workloads = append(workloads, workload{"Deployment", o.Name, o.Namespace, o.Spec.Selector, o.Spec.Template})
				}
			case "apps/v1/DaemonSet":
				var o appsv1.DaemonSet
				if strict(&o) {
					workloads = append(workloads, workload{"DaemonSet", o.Name, o.Namespace, o.Spec.Selector, o.Spec.Template})
				}
			case "v1/Service":
				var o corev1.Service
				if strict(&o) {
					services = append(services, o)
				}
			case "autoscaling/v2/HorizontalPodAutoscaler":
				var o autoscalingv2.HorizontalPodAutoscaler
				if strict(&o) {
					hpas = append(hpas, o)
				}
			case "policy/v1/PodDisruptionBudget":
				var o policyv1.PodDisruptionBudget
				if strict(&o) {
					pdbs = append(pdbs, o)
				}
			default:
				fail("%s: unexpected apiVersion/kind %s/%s", where, meta.APIVersion, meta.Kind)
			}
		}
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !listed[base] {
			fail("kustomization.yaml does not list %s", base)
		}
	}
	for r := range listed {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			fail("kustomization.yaml lists %s, which does not exist", r)
		}
	}

	for _, w := range workloads {
		where := w.kind + " " + w.name
		checkName(w.kind, w.name)
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.template.Labels)) {
			fail("%s: selector does not select its own pod template", where)
		}
		for _, c := range w.template.Spec.InitContainers {
			checkContainer(where+" init "+c.Name, c, w.template.Spec, configDir)
		}
		for _, c := range w.template.Spec.Containers {
			checkContainer(where+" container "+c.Name, c, w.template.Spec, configDir)
		}
	}
	selects := func(s *metav1.LabelSelector, set map[string]string) bool {
		sel, err := metav1.LabelSelectorAsSelector(s)
		return err == nil && !sel.Empty() && sel.Matches(labels.Set(set))
	}
	for _, s := range services {
		checkName("Service", s.Name)
		var target *workload
		for i := range workloads {
			if workloads[i].namespace == s.Namespace && len(s.Spec.Selector) > 0 &&
				labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(workloads[i].template.Labels)) {
				target = &workloads[i]
			}
		}
		if target == nil {
			fail("Service %s selects no workload", s.Name)
			continue
		}
		names := map[string]bool{}
		for _, c := range target.template.Spec.Containers {
			for _, p := range c.Ports {
				names[p.Name] = true
			}
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.StrVal != "" && !names[p.TargetPort.StrVal] {
				fail("Service %s: targetPort %q is not a port of %s", s.Name, p.TargetPort.StrVal, target.name)
			}
		}
	}
	for _, h := range hpas {
		found := false
		for _, w := range workloads {
			if w.kind == h.Spec.ScaleTargetRef.Kind && w.name == h.Spec.ScaleTargetRef.Name && w.namespace == h.Namespace {
				found = true
				for _, c := range w.template.Spec.Containers {
					if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
						fail("HPA %s: container %s has no CPU request (utilization is relative to it)", h.Name, c.Name)
					}
				}
			}
		}
		if !found {
			fail("HPA %s: scale target %s/%s does not exist", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			fail("HPA %s: needs minReplicas >= 2 and maxReplicas >= minReplicas", h.Name)
		}
	}
	for _, p := range pdbs {
		n := 0
		for _, w := range workloads {
			if w.namespace == p.Namespace && selects(p.Spec.Selector, w.template.Labels) {
				n++
			}
		}
		if n == 0 {
			fail("PodDisruptionBudget %s selects no workload", p.Name)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Println(p)
		}
		os.Exit(1)
	}
	fmt.Printf("ok: %d objects (%d workloads, %d services, %d HPAs, %d PDBs)\n", objects, len(workloads), len(services),
		len(hpas), len(pdbs))
}
