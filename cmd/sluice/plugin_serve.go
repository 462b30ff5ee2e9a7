package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/pluginserver"
)

// This file is `sluice plugin serve`: an HTTP server for a directory of
// plugins (internal/pluginserver), like Higress's plugin-server.

func newPluginServeCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve DIR",
		Short: "Serve a directory of .wasm plugins over HTTP, with an index (like Higress's plugin-server)",
		Long: `Serve the plugins in DIR over HTTP for WasmPlugins with http:// URLs.

Layouts (anything else in DIR is ignored):

  DIR/NAME/VERSION/plugin.wasm   served at /plugins/NAME/VERSION/plugin.wasm (Higress's plugin-server layout)
  DIR/NAME.wasm                  served at /plugins/NAME.wasm

GET / lists the plugins (HTML), GET /index.json the same as JSON: name, version, path,
url, size and sha256 (put the sha256 in the WasmPlugin's spec.sha256). DIR is re-read on
every request. SIGINT or SIGTERM stops the server after in-flight downloads finish.`,
		Example: `  sluice plugin serve ./dist --listen 127.0.0.1:8080
  curl -s http://127.0.0.1:8080/index.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			srv, err := pluginserver.New(args[0], logger)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			ps, err := srv.Scan()
			if err != nil {
				_ = ln.Close()
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %d plugin(s) from %s on http://%s/ (index: /index.json)\n", len(ps), srv.Dir(), ln.Addr())
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return pluginserver.Serve(ctx, ln, srv.Handler(), 30*time.Second)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	return cmd
}
