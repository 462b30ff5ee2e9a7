package plugintest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// PluginState is one plugin's entry in /config_dump, as far as tests read it.
type PluginState struct{ Name, State string }

// PluginStates reads the plugins' states from the admin API at adminAddr.
func PluginStates(t testing.TB, adminAddr string) []PluginState {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/config_dump")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dump struct {
		Plugins []PluginState `json:"plugins"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		t.Fatal(err)
	}
	return dump.Plugins
}
