package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/kube"
	"github.com/sluicegw/sluice/internal/plugins"
)

// kubeFlags are the flags of `sluice run --kubernetes`.
type kubeFlags struct {
	enabled    bool
	kubeconfig string
	namespace  string
	configMap  string
}

// registerKubeFlags adds the Kubernetes flags to the run command. Call it
// after -c/--config is registered: the two modes exclude each other.
func registerKubeFlags(cmd *cobra.Command, f *kubeFlags) {
	fs := cmd.Flags()
	fs.BoolVar(&f.enabled, "kubernetes", false,
		"take the configuration from Kubernetes: WasmPlugin objects plus the --configmap ConfigMap")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "",
		"kubeconfig file (default: $KUBECONFIG, else the in-cluster service account, else ~/.kube/config)")
	fs.StringVar(&f.namespace, "namespace", "",
		"namespace of the WasmPlugins to watch (default: all namespaces)")
	fs.StringVar(&f.configMap, "configmap", "",
		"ConfigMap holding the Gateway, Cluster and Route YAML, as NAMESPACE/NAME or NAME "+
			"(in --namespace, else the pod's namespace)")
	cmd.MarkFlagsMutuallyExclusive("config", "kubernetes")
}

// runKubernetes runs the gateway on configuration watched in a cluster:
// the gateway starts with the first valid configuration and is then
// reloaded in place on every change. It returns when the process is
// signalled, after draining.
func runKubernetes(cmd *cobra.Command, g *globalFlags, f kubeFlags) error {
	logger, err := g.logger(os.Stderr)
	if err != nil {
		return &exitError{2, err}
	}
	klog.SetSlogLogger(logger) // client-go logs through klog
	clients, err := kube.NewClients(f.kubeconfig, "sluice/"+versionString())
	if err != nil {
		return &exitError{2, err}
	}
	cm, err := parseConfigMapFlag(f.configMap, f.namespace, clients.Namespace)
	if err != nil {
		return &exitError{2, err}
	}
	if cm.Name == "" {
		logger.Warn("no --configmap: the gateway runs on the default Gateway (listening on 127.0.0.1:8080) " +
			"with no clusters or routes besides what WasmPlugins need")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The configuration follows the cluster; SIGHUP must not end the process.
	signal.Ignore(syscall.SIGHUP)

	gw := &kubeGateway{opts: app.Options{Logger: logger, Version: versionString()}}
	w, err := kube.New(kube.Options{
		Dynamic:   clients.Dynamic,
		Clientset: clients.Clientset,
		Namespace: f.namespace,
		ConfigMap: cm,
		Apply:     gw.apply,
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	logger.Info("waiting for the configuration from kubernetes", "wasmplugins_namespace", f.namespace, "configmap", cm.String())
	// Run returns when ctx ends (nil) or when the first list fails; it
	// calls gw.apply from its goroutine only, and never after returning.
	runErr := w.Run(ctx)
	stop()
	if err := gw.shutdown(logger); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	logger.Info("stopped")
	return nil
}

// parseConfigMapFlag reads NAMESPACE/NAME or NAME.
func parseConfigMapFlag(v, namespace, podNamespace string) (types.NamespacedName, error) {
	if v == "" {
		return types.NamespacedName{}, nil
	}
	if ns, name, ok := strings.Cut(v, "/"); ok {
		if ns == "" || name == "" || strings.Contains(name, "/") {
			return types.NamespacedName{}, fmt.Errorf("--configmap %q: want NAMESPACE/NAME or NAME", v)
		}
		return types.NamespacedName{Namespace: ns, Name: name}, nil
	}
	if namespace == "" {
		namespace = podNamespace
	}
	return types.NamespacedName{Namespace: namespace, Name: v}, nil
}

// kubeGateway is the gateway the watcher applies configurations to: the
// first valid one builds and starts the App, later ones are hot-reloaded.
type kubeGateway struct {
	opts app.Options

	mu      sync.Mutex
	app     *app.App
	timeout time.Duration // drain timeout of the configuration last applied
}

func (k *kubeGateway) apply(ctx context.Context, snap *config.Snapshot) (kube.ApplyResult, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.app == nil {
		a, err := app.New(ctx, snap, k.opts)
		if err != nil {
			return kube.ApplyResult{}, err
		}
		if err := a.Start(ctx); err != nil {
			_ = a.Shutdown(context.Background())
			return kube.ApplyResult{}, err
		}
		k.app, k.timeout = a, snap.Gateway.Spec.ShutdownTimeout.Duration
		res := kube.ApplyResult{Plugins: map[string]error{}}
		for _, st := range a.PluginStatuses() {
			if st.State == plugins.StateFailed {
				res.Plugins[st.Name] = errors.New(st.Error)
			}
		}
		return res, nil
	}
	res, err := reload(ctx, k.app, snap)
	if err == nil {
		k.timeout = snap.Gateway.Spec.ShutdownTimeout.Duration
	}
	return res, err
}

// reload hands snap to the running App and translates its per-plugin
// outcomes (named config.PluginName) for the watcher.
func reload(ctx context.Context, a *app.App, snap *config.Snapshot) (kube.ApplyResult, error) {
	rr, err := a.Apply(ctx, snap)
	if err != nil {
		return kube.ApplyResult{}, err
	}
	res := kube.ApplyResult{Plugins: map[string]error{}}
	for _, o := range rr.Plugins {
		if o.Error != "" {
			res.Plugins[o.Name] = errors.New(o.Error)
		}
	}
	return res, nil
}

func (k *kubeGateway) shutdown(logger interface{ Info(string, ...any) }) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.app == nil {
		return nil
	}
	logger.Info("shutting down", "drain_timeout", k.timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	if err := k.app.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
