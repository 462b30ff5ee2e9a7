package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/internal/plugins"
)

var pluginReadyDesc = prometheus.NewDesc("sluice_wasm_plugin_ready",
	"1 when a WasmPlugin loaded, 0 when it failed to load and its fail strategy applies (see /readyz and /config_dump for the reason). Plugins that apply nowhere are not reported.",
	[]string{"plugin"}, nil)

// pluginReadyCollector exports each plugin's load state from its statuses.
type pluginReadyCollector func() []plugins.Status

func (c pluginReadyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pluginReadyDesc }

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
	}
}
