package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of a compose file these tests read.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Ports     []string             `yaml:"ports"`
	Volumes   []string             `yaml:"volumes"`
	DependsOn map[string]yaml.Node `yaml:"depends_on"`
	Hostname  string               `yaml:"hostname"`
}

// upstreamRE finds host:port upstreams in a Caddyfile (reverse_proxy
// targets, Redis URLs).
var upstreamRE = regexp.MustCompile(`(?:reverse_proxy|redis://)\s*((?:[a-z][a-z0-9-]*:\d+\s*)+)`)

// siteRE finds the ports of ":port {" site addresses.
var siteRE = regexp.MustCompile(`(?m)^:(\d+)\s*\{`)

func caddyfileUpstreams(text string) []string {
	var ups []string
	for _, m := range upstreamRE.FindAllStringSubmatch(text, -1) {
		ups = append(ups, strings.Fields(m[1])...)
	}
	return ups
}

func caddyfileSitePorts(text string) map[string]bool {
	ports := map[string]bool{}
	for _, m := range siteRE.FindAllStringSubmatch(text, -1) {
		ports[m[1]] = true
	}
	return ports
}

// TestComposeFile: examples/compose/compose.yaml parses (anchors and merge
// keys included); every service it depends on exists; every file it mounts
// exists; the images are pinned to go.mod's Caddy; every service:port a
// mounted Caddyfile proxies to is a service that listens there; the one
// published port is the load balancer's site.
func TestComposeFile(t *testing.T) {
	const dir = "examples/compose"
	var c composeFile
	if err := yaml.Unmarshal(readFile(t, dir+"/compose.yaml"), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, want := range []string{"lb", "ahp-1", "ahp-2", "legacy", "concierge", "redis"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("compose.yaml: no service %q", want)
		}
	}
	caddy := "caddy:" + caddyVersion(t)
	// The Caddyfile each service runs, and the ports it serves.
	caddyfileOf := map[string]string{}
	listens := map[string]map[string]bool{
		"redis":  {"6379": true},
		"legacy": {"80": true}, // nginx's default server
	}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("compose.yaml: %s depends on %q, which is not a service", name, dep)
			}
		}
		if strings.HasPrefix(s.Image, "caddy:") && s.Image != caddy {
			t.Errorf("compose.yaml: %s runs %s; go.mod pins %s", name, s.Image, caddy)
		}
		if s.Build != nil {
			ctx := filepath.Join(dir, s.Build.Context)
			if _, err := os.Stat(filepath.Join(root, ctx, s.Build.Dockerfile)); err != nil {
				t.Errorf("compose.yaml: %s builds %s/%s: %v", name, ctx, s.Build.Dockerfile, err)
			}
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
				continue // a named volume
			}
			src := filepath.Join(dir, parts[0])
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("compose.yaml: %s mounts %s: %v", name, parts[0], err)
			}
			if parts[1] == "/etc/caddy/Caddyfile" {
				text := string(readFile(t, src))
				caddyfileOf[name] = text
				listens[name] = caddyfileSitePorts(text)
			}
		}
	}
	for _, name := range []string{"lb", "ahp-1", "ahp-2", "concierge"} {
		if caddyfileOf[name] == "" {
			t.Errorf("compose.yaml: %s mounts no Caddyfile at /etc/caddy/Caddyfile", name)
		}
	}
	for name, text := range caddyfileOf {
		for _, up := range caddyfileUpstreams(text) {
			host, port, _ := strings.Cut(up, ":")
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s's Caddyfile proxies to %s, but there is no service %q", name, up, host)
				continue
			}
			if !listens[host][port] {
				t.Errorf("%s's Caddyfile proxies to %s, but %s listens on %v", name, up, host, sortedKeys(listens[host]))
			}
		}
	}
	var published []string
	for name, s := range c.Services {
		for _, p := range s.Ports {
			published = append(published, name+" "+p)
			parts := strings.Split(p, ":")
			if !listens[name][parts[len(parts)-1]] {
				t.Errorf("compose.yaml: %s publishes %s, but its Caddyfile has no site on that port", name, p)
			}
		}
	}
	if len(published) != 1 || !strings.HasPrefix(published[0], "lb ") {
		t.Errorf("compose.yaml: only the load balancer should publish a port; published: %v", published)
	}
}

// k8sObject is the part of a Deployment, Service or ConfigMap these tests read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// Service
		Selector map[string]yaml.Node `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		// Deployment
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

// TestKubernetesManifests: every document of examples/kubernetes parses and
// names its kind and itself; each Service selects a Deployment's pods and
// targets a port a container declares; each probe and volume mount refers
// to a declared port, volume and ConfigMap key; the sidecar's Caddyfile
// proxies to the port the legacy container listens on (loopback only) and to
// a Redis Service that exists; the probes hit the Caddyfile's probe site.
func TestKubernetesManifests(t *testing.T) {
	const dir = "examples/kubernetes"
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	var objs []k8sObject
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		for i, n := range yamlDocs(t, dir+"/"+e.Name()) {
			var o k8sObject
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s document %d: %v", e.Name(), i, err)
			}
			var head k8sDoc
			_ = n.Decode(&head)
			if head.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s document %d: apiVersion, kind and metadata.name are required", e.Name(), i)
			}
			objs = append(objs, o)
		}
	}
	byKind := map[string]map[string]k8sObject{}
	for _, o := range objs {
		if byKind[o.Kind] == nil {
			byKind[o.Kind] = map[string]k8sObject{}
		}
		byKind[o.Kind][o.Metadata.Name] = o
	}
	for _, want := range []string{"ConfigMap/caddy-ahp", "Deployment/legacy-site", "Service/legacy-site", "Deployment/redis", "Service/redis"} {
		kind, name, _ := strings.Cut(want, "/")
		if _, ok := byKind[kind][name]; !ok {
			t.Errorf("examples/kubernetes: no %s", want)
		}
	}

	servicePorts := map[string]map[int]bool{}
	for name, svc := range byKind["Service"] {
		servicePorts[name] = map[int]bool{}
		var selected []k8sObject
		for _, d := range byKind["Deployment"] {
			if selects(svc.Spec.Selector, d.Spec.Template.Metadata.Labels) {
				selected = append(selected, d)
			}
		}
		if len(selected) == 0 {
			t.Errorf("Service %s selects no Deployment's pods", name)
		}
		for _, p := range svc.Spec.Ports {
			servicePorts[name][p.Port] = true
			for _, d := range selected {
				if !declaresPort(d.Spec.Template.Spec.Containers, p.TargetPort) {
					t.Errorf("Service %s targets port %v, which no container of %s declares", name, p.TargetPort, d.Metadata.Name)
				}
			}
		}
	}

	for name, d := range byKind["Deployment"] {
		pod := d.Spec.Template.Spec
		volumes := map[string]string{} // volume -> ConfigMap ("" for others)
		for _, v := range pod.Volumes {
			volumes[v.Name] = ""
			if v.ConfigMap != nil {
				volumes[v.Name] = v.ConfigMap.Name
				if _, ok := byKind["ConfigMap"][v.ConfigMap.Name]; !ok {
					t.Errorf("Deployment %s: volume %s names ConfigMap %s, which does not exist", name, v.Name, v.ConfigMap.Name)
				}
			}
		}
		for _, c := range pod.Containers {
			for _, m := range c.VolumeMounts {
				cm, ok := volumes[m.Name]
				if !ok {
					t.Errorf("Deployment %s, container %s: mounts volume %s, which the pod does not have", name, c.Name, m.Name)
				}
				if cm != "" && m.SubPath != "" {
					if _, ok := byKind["ConfigMap"][cm].Data[m.SubPath]; !ok {
						t.Errorf("Deployment %s, container %s: mounts key %s of ConfigMap %s, which has no such key", name, c.Name, m.SubPath, cm)
					}
				}
			}
			for _, p := range []*k8sProbe{c.ReadinessProbe, c.LivenessProbe} {
				if p == nil {
					t.Errorf("Deployment %s, container %s: readiness and liveness probes are required", name, c.Name)
					continue
				}
				switch {
				case p.HTTPGet != nil:
					if !declaresPort([]k8sContainer{c}, p.HTTPGet.Port) {
						t.Errorf("Deployment %s, container %s: probe port %v is not declared", name, c.Name, p.HTTPGet.Port)
					}
				case p.TCPSocket != nil:
					if !declaresPort([]k8sContainer{c}, p.TCPSocket.Port) {
						t.Errorf("Deployment %s, container %s: probe port %v is not declared", name, c.Name, p.TCPSocket.Port)
					}
				}
			}
		}
	}

	// The sidecar and its Caddyfile.
	cm := byKind["ConfigMap"]["caddy-ahp"]
	caddyfile := cm.Data["Caddyfile"]
	legacyConf := cm.Data["legacy.conf"]
	sites := caddyfileSitePorts(caddyfile)
	var sidecar *k8sContainer
	for _, c := range byKind["Deployment"]["legacy-site"].Spec.Template.Spec.Containers {
		if c.Name == "ahp" {
			sidecar = &c
		}
	}
	if sidecar == nil {
		t.Fatal("Deployment legacy-site has no container named ahp")
	}
	for _, p := range sidecar.Ports {
		if !sites[strconv.Itoa(p.ContainerPort)] {
			t.Errorf("the sidecar declares port %d (%s), but its Caddyfile has no site on it (sites: %v)", p.ContainerPort, p.Name, sortedKeys(sites))
		}
	}
	if h := sidecar.ReadinessProbe.HTTPGet; h == nil || h.Path != "/healthz" {
		t.Error("the sidecar's readiness probe must GET /healthz")
	}
	m := regexp.MustCompile(`reverse_proxy 127\.0\.0\.1:(\d+)`).FindStringSubmatch(caddyfile)
	if m == nil {
		t.Fatal("the sidecar's Caddyfile does not proxy to the legacy container on 127.0.0.1")
	}
	if !strings.Contains(legacyConf, "listen 127.0.0.1:"+m[1]+";") {
		t.Errorf("the legacy container must listen on 127.0.0.1:%s (loopback only), where the sidecar proxies; legacy.conf:\n%s", m[1], legacyConf)
	}
	for _, up := range caddyfileUpstreams(caddyfile) {
		host, port, _ := strings.Cut(up, ":")
		p, _ := strconv.Atoi(port)
		if !servicePorts[host][p] {
			t.Errorf("the sidecar's Caddyfile uses %s, but no Service %s has port %s", up, host, port)
		}
	}
}

// selects reports whether a Service selector matches pod labels.
func selects(selector map[string]yaml.Node, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v.Value {
			return false
		}
	}
	return true
}

// declaresPort reports whether a port reference (a name or a number) names
// a port one of the containers declares.
func declaresPort(containers []k8sContainer, ref any) bool {
	for _, c := range containers {
		for _, p := range c.Ports {
			if fmt.Sprint(ref) == p.Name || fmt.Sprint(ref) == strconv.Itoa(p.ContainerPort) {
				return true
			}
		}
	}
	return false
}
