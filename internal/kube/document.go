package kube

import (
	"fmt"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// lastAppliedAnnotation is written by kubectl apply and repeats the whole
// object; it is dropped from the configuration Sluice sees.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// cleanDocument is a WasmPlugin object reduced to what a user writes:
// apiVersion, kind, metadata.name/namespace/labels/annotations and spec.
// Field order is fixed so that line numbers in messages are stable.
type cleanDocument struct {
	APIVersion string        `yaml:"apiVersion"`
	Kind       string        `yaml:"kind"`
	Metadata   cleanMetadata `yaml:"metadata"`
	Spec       any           `yaml:"spec,omitempty"`
}

type cleanMetadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// renderObject turns an object read from the API server into a YAML
// document that config's strict decoder accepts: the fields the server
// adds (status, uid, resourceVersion, generation, creationTimestamp,
// managedFields, ownerReferences, finalizers, …) are left out, and so is
// kubectl's last-applied-configuration annotation. Anything else at the
// top level besides spec is dropped too; fields inside spec are kept as
// they are, so unknown ones are still reported by the decoder.
func renderObject(u *unstructured.Unstructured) ([]byte, error) {
	doc := cleanDocument{
		APIVersion: u.GetAPIVersion(),
		Kind:       u.GetKind(),
		Metadata: cleanMetadata{
			Name:      u.GetName(),
			Namespace: u.GetNamespace(),
			Labels:    u.GetLabels(),
		},
		Spec: u.Object["spec"],
	}
	if ann := u.GetAnnotations(); len(ann) > 0 {
		doc.Metadata.Annotations = make(map[string]string, len(ann))
		for k, v := range ann {
			if k != lastAppliedAnnotation {
				doc.Metadata.Annotations[k] = v
			}
		}
		if len(doc.Metadata.Annotations) == 0 {
			doc.Metadata.Annotations = nil
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: render: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return out, nil
}

// pluginSourceName names a WasmPlugin object in configuration messages.
func pluginSourceName(namespace, name string) string {
	return "wasmplugin/" + namespace + "/" + name
}

// configMapSourceName names one key of the ConfigMap in messages.
func configMapSourceName(namespace, name, key string) string {
	return configMapName(namespace, name) + ":" + key
}

// configMapName names the ConfigMap itself.
func configMapName(namespace, name string) string {
	return "configmap/" + namespace + "/" + name
}
