package kube

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Clients are the two API clients a Watcher needs.
type Clients struct {
	Dynamic   dynamic.Interface
	Clientset kubernetes.Interface
	// Namespace is the namespace this process runs in (in a cluster), or
	// the kubeconfig context's namespace, or "default".
	Namespace string
}

// NewClients connects to the API server named by kubeconfig (a path) or,
// when it is "", by $KUBECONFIG; without either it uses the in-cluster
// service account and falls back to ~/.kube/config outside a cluster.
func NewClients(kubeconfig, userAgent string) (*Clients, error) {
	cfg, ns, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = userAgent
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Clients{Dynamic: dyn, Clientset: cs, Namespace: ns}, nil
}

// inClusterNamespaceFile holds the pod's namespace in a cluster.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func restConfig(kubeconfig string) (*rest.Config, string, error) {
	if kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			ns := os.Getenv("POD_NAMESPACE")
			if ns == "" {
				if b, err := os.ReadFile(inClusterNamespaceFile); err == nil {
					ns = strings.TrimSpace(string(b))
				}
			}
			if ns == "" {
				ns = "default"
			}
			return cfg, ns, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, "", fmt.Errorf("in-cluster kubernetes config: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // $KUBECONFIG, then ~/.kube/config
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w (outside a cluster, pass --kubeconfig or set KUBECONFIG)", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return cfg, ns, nil
}
