package wasmhost

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// TestCallbacksGoThroughTheDispatcher: in a module the host rewrote, every
// callback export a plugin has is called through the one dispatcher (and
// the calls work: the plugin is configured through it); without the
// rewrite (loop guard off) the exports are called directly.
func TestCallbacksGoThroughTheDispatcher(t *testing.T) {
	for _, name := range []string{"go/noop", "c/addheader", "rust/addheader", "as/addheader"} {
		for _, noGuard := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "/no-loop-guard"}[noGuard], func(t *testing.T) {
				ctx := context.Background()
				rt, err := NewRuntime(ctx, RuntimeOptions{NoLoopGuard: noGuard})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = rt.Close(ctx) })
				m, err := rt.Compile(ctx, wasmtest.Plugin(t, name))
				if err != nil {
					t.Fatal(err)
				}
				svc := &Services{Shared: NewShared(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
				p, err := NewPlugin(ctx, rt, m, PluginSpec{Name: "p", Config: []byte(`{"from":"a","to":"b"}`), PoolSize: 1}, svc)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close(ctx) })
				in := p.pool.live()[0]
				exports := map[string]*export{
					"proxy_on_context_create": in.fnContextCreate, "proxy_on_configure": in.fnConfigure,
					"proxy_on_request_headers": in.fnReqHeaders,
				}
				for export, e := range exports {
					switch {
					case e == nil:
						t.Errorf("%s: not found", export)
					case noGuard && e.disp != nil:
						t.Errorf("%s: dispatched without the rewrite", export)
					case !noGuard && e.disp == nil:
						t.Errorf("%s: not dispatched", export)
					case !noGuard && dispatched[e.dispCase] != export:
						t.Errorf("%s: dispatched as case %d (%s)", export, e.dispCase, dispatched[e.dispCase])
					}
				}
			})
		}
	}
}
