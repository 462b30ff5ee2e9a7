package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Options are the Registry's collaborators.
type Options struct {
	// Logger receives health transitions and DNS problems. nil means
	// slog.Default().
	Logger *slog.Logger
	// OnHealthChange, if set, is called once per endpoint at Start (and when
	// DNS adds an endpoint) with its initial state, healthy, and on every
	// health transition after that. It is called from several goroutines
	// (never twice at once for one endpoint) and must not block. Redis
	// clusters are neither checked nor reported.
	OnHealthChange func(cluster, endpoint string, healthy bool)
}

// Registry holds the clusters of one configuration generation.
//
// Lookup, All and every Cluster method are safe for concurrent use at any
// time, before Start and after Stop included (after Stop, requests still
// work; only health checks and DNS refreshes have ended). Start and Stop
// may be called from any goroutine; each takes effect once.
type Registry struct {
	clusters []*Cluster
	names    nameIndex

	mu      sync.Mutex // guards the lifecycle below
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup // health checkers and DNS refreshers
}

// NewRegistry builds the clusters. It reports every problem at once
// (unparsable endpoints, an unreadable CA file, duplicate names); configs
// that passed internal/config should have none. It starts nothing.
func NewRegistry(clusters []*v1alpha1.Cluster, opts Options) (*Registry, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Registry{}
	var errs []error
	seen := make(map[[2]string]bool, len(clusters))
	for i, cfg := range clusters {
		if cfg == nil {
			errs = append(errs, fmt.Errorf("cluster %d is nil", i))
			continue
		}
		if cfg.Metadata.Name == "" {
			errs = append(errs, fmt.Errorf("cluster %d: metadata.name is empty", i))
			continue
		}
		key := [2]string{cfg.Metadata.Namespace, cfg.Metadata.Name}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: metadata.name: defined twice", resourceRef(key[0], key[1])))
			continue
		}
		seen[key] = true
		c, err := newCluster(cfg, opts, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.clusters = append(r.clusters, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.names = newNameIndex(r.clusters)
	return r, nil
}

// resourceRef is "Cluster/<namespace>/<name>", how errors name a cluster.
func resourceRef(namespace, name string) string {
	return v1alpha1.KindCluster + "/" + displayName(namespace, name)
}

// displayName is "<namespace>/<name>", or the name when no namespace is set.
func displayName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// Lookup resolves a cluster name in any form plugins use (plain,
// "name:port", outbound|<port>|<subset>|<fqdn> with the Higress suffixes;
// see names.go). A failure wraps ErrUnknownCluster and says why.
func (r *Registry) Lookup(name string) (*Cluster, error) {
	return r.names.lookup(name)
}

// All returns every cluster in configuration order.
func (r *Registry) All() []*Cluster {
	return append([]*Cluster(nil), r.clusters...)
}

// Start resolves dns clusters once (clusters in parallel, each lookup
// bounded by the cluster's connect timeout; a host that does not resolve
// stays as written and Go's dialer resolves it per connection), reports
// every endpoint's initial state, then starts health checkers and DNS
// refreshers. They run until Stop or until ctx
// ends. Start is idempotent; it does nothing after Stop.
func (r *Registry) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(ctx)

	var resolving sync.WaitGroup
	for _, c := range r.clusters {
		if c.typ == v1alpha1.ClusterDNS {
			resolving.Go(func() { c.resolve(ctx) })
		}
	}
	resolving.Wait()
	for _, c := range r.clusters {
		c.start(ctx, &r.wg)
	}
}

// Stop ends health checkers and DNS refreshers, waits for them, and closes
// idle upstream connections. In-flight requests are not interrupted. Stop
// is idempotent and safe without Start.
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	for _, c := range r.clusters {
		c.stop()
	}
}
