package config

import "fmt"

// Source is one named configuration text that does not come from a file:
// a ConfigMap key or a Kubernetes object rendered as YAML. Name stands for
// the file name in messages ("configmap/ns/name:key:12: Route/chat: …").
//
// Relative paths inside a Source (TLS files, file:// plugin URLs) are
// resolved against the directory part of Name, which for names like
// "configmap/ns/name:key" is not a real directory; such sources should
// use absolute paths.
type Source struct {
	Name string
	Data []byte
}

// ParseSources is Load for in-memory sources, taken in the order given:
// resources are declared in that order, and the first of two resources
// with the same name wins, exactly as for files. The error, when not nil,
// is an ErrorList holding every problem found, and the Snapshot is nil.
// Snapshot.Files lists the source names.
func ParseSources(srcs []Source) (*Snapshot, error) {
	var f findings
	in := make([]source, 0, len(srcs))
	seen := make(map[string]bool, len(srcs))
	for _, s := range srcs {
		if seen[s.Name] {
			f.err(&Error{File: s.Name, Message: fmt.Sprintf("source %q is given more than once", s.Name),
				Hint: "every source needs its own name so that messages can point at it"})
			continue
		}
		seen[s.Name] = true
		in = append(in, source{s.Name, s.Data})
	}
	return build(in, &f)
}
