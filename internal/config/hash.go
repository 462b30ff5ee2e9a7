package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// hash is the hex SHA-256 of the snapshot's normalised form: the JSON of
// its defaulted resources, in declaration order. JSON sorts map keys and
// the resources hold no trace of comments or layout, so two files that say
// the same thing hash alike. The list of files read is not part of it.
func hash(s *Snapshot) string {
	normal := struct {
		Gateway     *v1alpha1.Gateway      `json:"gateway"`
		Clusters    []*v1alpha1.Cluster    `json:"clusters"`
		Routes      []*v1alpha1.Route      `json:"routes"`
		WasmPlugins []*v1alpha1.WasmPlugin `json:"wasmPlugins"`
	}{s.Gateway, s.Clusters, s.Routes, s.WasmPlugins}
	data, err := json.Marshal(normal)
	if err != nil {
		// Unreachable: the decoder only produces JSON-encodable values
		// (FuzzParse checks it). Stay deterministic all the same.
		data = []byte("unencodable configuration: " + err.Error())
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
