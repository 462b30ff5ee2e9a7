package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Snapshot is one complete, validated, defaulted configuration. A Snapshot
// is never modified after Load or Parse returns it, so it may be shared
// between goroutines; callers must not modify it either (use Redacted for a
// copy).
type Snapshot struct {
	// Gateway is never nil: the defaults apply when no Gateway document exists.
	Gateway *v1alpha1.Gateway
	// Clusters in declaration order.
	Clusters []*v1alpha1.Cluster
	// Routes in declaration order: files in the order given, a directory's
	// *.yaml/*.yml files sorted by name, documents in file order.
	Routes []*v1alpha1.Route
	// WasmPlugins in declaration order.
	WasmPlugins []*v1alpha1.WasmPlugin
	// Files lists the files read, in the order read.
	Files []string
	// Hash is the hex SHA-256 of the normalised configuration (the JSON of
	// the defaulted resources, in order). Equal configurations have equal
	// hashes whatever their comments, formatting or file layout.
	Hash string
	// Warnings are non-fatal findings, sorted by file and line.
	Warnings []*Error
}

// Load reads configuration files and directories. A directory contributes
// its *.yaml and *.yml files (not recursively, hidden files skipped) in
// name order. The error, when not nil, is an ErrorList holding every
// problem found, and the Snapshot is nil.
func Load(paths ...string) (*Snapshot, error) {
	var f findings
	var srcs []source
	for _, file := range expandPaths(paths, &f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.err(&Error{File: file, Message: "cannot read: " + pathErrorText(err)})
			continue
		}
		srcs = append(srcs, source{file, data})
	}
	return build(srcs, &f)
}

// Parse is Load for one in-memory file (tests, fuzzing). file names it in
// messages and is the base for relative paths in it; files it refers to
// (certificates, CA bundles) are still looked up on disk.
func Parse(file string, data []byte) (*Snapshot, error) {
	var f findings
	return build([]source{{file, data}}, &f)
}

// RouteName is the route_name plugins see for r: "name", or
// "namespace/name" when a namespace is set (Higress's convention for
// Ingress-derived routes, used by matchRules[].ingress).
func RouteName(r *v1alpha1.Route) string {
	if r.Metadata.Namespace != "" {
		return r.Metadata.Namespace + "/" + r.Metadata.Name
	}
	return r.Metadata.Name
}

// PluginName is the name a plugin is known by in logs, metrics and the
// admin API: "namespace.name" when a namespace is set (Istio's name for the
// resulting filter), else name.
func PluginName(p *v1alpha1.WasmPlugin) string {
	if p.Metadata.Namespace != "" {
		return p.Metadata.Namespace + "." + p.Metadata.Name
	}
	return p.Metadata.Name
}

// source is one file's content.
type source struct {
	name string
	data []byte
}

// resource is a decoded object together with the document it came from.
type resource[T any] struct {
	doc *document
	obj T
}

// resources is everything one load declared, in declaration order, with
// duplicates already removed.
type resources struct {
	gateway  *resource[*v1alpha1.Gateway]
	clusters []resource[*v1alpha1.Cluster]
	routes   []resource[*v1alpha1.Route]
	plugins  []resource[*v1alpha1.WasmPlugin]
	// clusterByName and routeByName index the resources above.
	clusterByName map[string]*v1alpha1.Cluster
	routeByName   map[string]*v1alpha1.Route
	// complete is false when a file could not be parsed; references are
	// then not checked, since their targets may be in the unreadable part.
	complete bool
}

// build decodes, validates and defaults the sources.
func build(srcs []source, f *findings) (*Snapshot, error) {
	var docs []*document
	complete := true
	files := make([]string, 0, len(srcs))
	for _, s := range srcs {
		files = append(files, s.name)
		d, parsed := decodeFile(s.name, s.data, f)
		if parsed && len(d) == 0 {
			f.warn(&Error{File: s.name, Message: "file holds no resources", Hint: "it is empty or all comments"})
		}
		docs = append(docs, d...)
		complete = complete && parsed
	}
	set := collect(docs, f)
	set.complete = complete
	validate(set, f)
	if len(f.errs) > 0 {
		f.errs.sort()
		return nil, f.errs
	}
	snap := &Snapshot{Files: files}
	applyDefaults(set, snap)
	snap.Hash = hash(snap)
	f.warnings.sort()
	snap.Warnings = f.warnings
	return snap, nil
}

// collect sorts the decoded documents by kind and reports missing and
// duplicate names. The first resource with a name wins; later ones are
// reported at their metadata.name and dropped.
func collect(docs []*document, f *findings) *resources {
	set := &resources{
		clusterByName: map[string]*v1alpha1.Cluster{},
		routeByName:   map[string]*v1alpha1.Route{},
	}
	first := map[string]*document{} // kind + "/" + key → first declaration
	for _, d := range docs {
		if d.obj == nil {
			continue
		}
		var key string
		switch o := d.obj.(type) {
		case *v1alpha1.Gateway:
			key = "" // at most one, whatever the name
		case *v1alpha1.Cluster:
			key = o.Metadata.Name
		case *v1alpha1.Route:
			key = RouteName(o)
		case *v1alpha1.WasmPlugin:
			key = PluginName(o)
		}
		if prev, dup := first[d.kind+"/"+key]; dup {
			first := fmt.Sprintf("%s:%d", prev.file, prev.lineOf("metadata.name"))
			if d.kind == v1alpha1.KindGateway {
				f.err(d.problem("", "only one Gateway is allowed, another is declared at "+first,
					"merge the two into one Gateway"))
			} else if key != "" {
				f.err(d.problem("metadata.name", fmt.Sprintf("duplicate %s name %q, first declared at %s", d.kind, key, first),
					"names must be unique per kind; rename one of them"))
			}
			continue
		}
		if key != "" || d.kind == v1alpha1.KindGateway {
			first[d.kind+"/"+key] = d
		}
		switch o := d.obj.(type) {
		case *v1alpha1.Gateway:
			set.gateway = &resource[*v1alpha1.Gateway]{d, o}
		case *v1alpha1.Cluster:
			set.clusters = append(set.clusters, resource[*v1alpha1.Cluster]{d, o})
			if key != "" {
				set.clusterByName[key] = o
			}
		case *v1alpha1.Route:
			set.routes = append(set.routes, resource[*v1alpha1.Route]{d, o})
			if key != "" {
				set.routeByName[key] = o
			}
		case *v1alpha1.WasmPlugin:
			set.plugins = append(set.plugins, resource[*v1alpha1.WasmPlugin]{d, o})
		}
	}
	return set
}

// expandPaths turns the arguments of Load into the list of files to read.
func expandPaths(paths []string, f *findings) []string {
	if len(paths) == 0 {
		f.err(&Error{Message: "no configuration files given", Hint: "name one or more YAML files or directories"})
		return nil
	}
	var files []string
	seen := map[string]string{}
	add := func(file string) {
		key := file
		if abs, err := filepath.Abs(file); err == nil {
			key = abs
		}
		if prev, dup := seen[key]; dup {
			f.warn(&Error{File: file, Message: "file is named more than once (also as " + prev + ")", Hint: "it is read once"})
			return
		}
		seen[key] = file
		files = append(files, file)
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			f.err(&Error{File: p, Message: "cannot read: " + pathErrorText(err)})
			continue
		}
		if !info.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			f.err(&Error{File: p, Message: "cannot read directory: " + pathErrorText(err)})
			continue
		}
		n := 0
		for _, e := range entries { // ReadDir sorts by name
			name := e.Name()
			ext := strings.ToLower(filepath.Ext(name))
			if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			file := filepath.Join(p, name)
			if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			add(file)
			n++
		}
		if n == 0 {
			f.err(&Error{File: p, Message: "directory has no *.yaml or *.yml files",
				Hint: "configuration files must end in .yaml or .yml; subdirectories are not read"})
		}
	}
	return files
}

// pathErrorText is an OS error without the path it repeats.
func pathErrorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
