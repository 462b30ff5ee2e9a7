package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
)

// The test binary doubles as the target processes of these tests: run with
// BENCH_HARNESS_HELPER set, TestMain turns it into a mock LLM, a proxy, a
// gateway reading the generated config with Sluice's own loader (so every
// run of a gateway target also checks that config), or a misbehaving
// process.
const helperEnv = "BENCH_HARNESS_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperMain(os.Args[1:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperCmd is a command line that runs the test binary as helper mode.
func helperCmd(t *testing.T, mode string, args ...string) string {
	t.Helper()
	t.Setenv(helperEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(append([]string{exe, mode}, args...), " ")
}

func helperMain(args []string) {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "helper: no mode")
		os.Exit(2)
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	switch mode, rest := args[0], args[1:]; mode {
	case "mock": // mock ADDR [--chunk-delay D]
		delay := time.Duration(0)
		if len(rest) >= 3 && rest[1] == "--chunk-delay" {
			delay, _ = time.ParseDuration(rest[2])
		}
		fail(http.ListenAndServe(rest[0], mockHandler(delay)))
	case "proxy": // proxy ADDR UPSTREAM
		fail(http.ListenAndServe(rest[0], proxyTo(rest[1])))
	case "gateway": // gateway CONFIG: a proxy configured by the generated config, read with Sluice's loader
		snap, err := config.Load(rest[0])
		if err != nil {
			fail(err)
		}
		if len(snap.Warnings) > 0 {
			fail(fmt.Errorf("config warnings: %v", snap.Warnings))
		}
		g := snap.Gateway.Spec
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ready") })
			mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(map[string]any{"plugins": pluginStatuses(snap)})
			})
			fail(http.ListenAndServe(g.Admin.Address, mux))
		}()
		fail(http.ListenAndServe(g.Listeners[0].Address, proxyTo(snap.Clusters[0].Spec.Endpoints[0].Address)))
	case "flaky": // flaky ADDR: a mock whose every third chat request after the first fails
		var n atomic.Int64
		mock := mockHandler(0)
		fail(http.ListenAndServe(rest[0], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && n.Add(1)%3 == 0 {
				http.Error(w, "flaky says no", http.StatusServiceUnavailable)
				return
			}
			mock.ServeHTTP(w, r)
		})))
	case "crash": // prints and exits 3 at once
		fmt.Fprintln(os.Stderr, "helper: cannot start: bad things happened")
		os.Exit(3)
	case "stubborn": // serves /healthz on ADDR and ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fail(http.ListenAndServe(rest[0], mockHandler(0)))
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
}

// failPluginKey in a plugin's defaultConfig makes the helper gateway report
// the plugin failed, with the key's value as the error.
const failPluginKey = "bench_test_fail"

// pluginStatuses is what the helper gateway reports for the plugins of
// snap: ready, unless the module file is missing or the configuration asks
// for a failure.
func pluginStatuses(snap *config.Snapshot) []pluginStatus {
	var out []pluginStatus
	for _, wp := range snap.WasmPlugins {
		st := pluginStatus{Name: config.PluginName(wp), State: "ready"}
		if _, err := os.Stat(strings.TrimPrefix(wp.Spec.URL, "file://")); err != nil {
			st.State, st.Error = "failed", err.Error()
		} else if msg, ok := wp.Spec.DefaultConfig[failPluginKey]; ok {
			st.State, st.Error = "failed", fmt.Sprint(msg)
		}
		out = append(out, st)
	}
	return out
}

func proxyTo(hostport string) http.Handler {
	u, _ := url.Parse("http://" + hostport)
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		p.ServeHTTP(w, r)
	})
}

// mockHandler is a minimal OpenAI-style chat completions endpoint.
func mockHandler(chunkDelay time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}`+"\n\n")
		f.Flush()
		for _, word := range []string{"hello", " bench"} {
			time.Sleep(chunkDelay)
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", word)
			f.Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	return mux
}
