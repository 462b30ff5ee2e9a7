package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/internal/plugins"
)

var pluginReadyDesc = prometheus.NewDesc("sluice_wasm_plugin_ready",
	"1 when a WasmPlugin loaded, 0 when it failed to load and its fail strategy applies (see /readyz and /config_dump for the reason). Plugins that apply nowhere are not reported.",
	[]string{"plugin"}, nil)

var pluginUpdateFailedDesc = prometheus.NewDesc("sluice_wasm_plugin_update_failed",
	"1 when the latest configuration of a WasmPlugin could not be applied (fetch, compile or configure failed) and its previous version keeps serving; 0 otherwise. The reason is in /config_dump (plugins[].updateError) and /readyz.",
	[]string{"plugin"}, nil)

// pluginReadyCollector exports each plugin's load and update state from
// the statuses of the generation in force.
type pluginReadyCollector func() []plugins.Status

func (c pluginReadyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginReadyDesc
	ch <- pluginUpdateFailedDesc
}

func (c pluginReadyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c() {
		v := 0.0
		switch st.State {
		case plugins.StateReady:
			v = 1
		case plugins.StateFailed:
		default:
			continue
		}
		ch <- prometheus.MustNewConstMetric(pluginReadyDesc, prometheus.GaugeValue, v, st.Name)
		failed := 0.0
		if st.UpdateError != "" {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(pluginUpdateFailedDesc, prometheus.GaugeValue, failed, st.Name)
	}
}
