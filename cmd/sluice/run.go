package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
)

func newRunCommand(g *globalFlags) *cobra.Command {
	var paths []string
	var watch bool
	var debounce time.Duration
	var kf kubeFlags
	cmd := &cobra.Command{
		Use:   "run -c FILE|DIR [-c ...]",
		Short: "Run the gateway",
		Long: "Run the gateway with the configuration in the given files or directories.\n" +
			"Any configuration error stops it before it listens.\n\n" +
			"The configuration is reloaded live when its files change (--watch), on SIGHUP\n" +
			"and on POST /reload to the admin API. A configuration that does not load is\n" +
			"rejected whole and the running one keeps serving. Listener, admin, access log,\n" +
			"tracing and Wasm runtime settings need a restart (a reload warns about them).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kf.enabled {
				return runKubernetes(cmd, g, kf)
			}
			if len(paths) == 0 {
				return &exitError{2, errors.New("run needs -c FILE|DIR")}
			}
			logger, err := g.logger(os.Stderr)
			if err != nil {
				return &exitError{2, err}
			}
			snap, err := config.Load(paths...)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return &exitError{1, errors.New("configuration is invalid; nothing started")}
			}
			for _, w := range snap.Warnings {
				logger.Warn("config", "warning", w.Error())
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// SIGHUP reloads; registered before the gateway starts so that an
			// early HUP never takes the default action (exit).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			a, err := app.New(ctx, snap, app.Options{Logger: logger, Version: versionString(), ConfigPaths: paths})
			if err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				_ = a.Shutdown(context.Background())
				return err
			}
			var w *app.Watcher
			if watch {
				if w, err = a.Watch(debounce); err != nil {
					logger.Error("cannot watch the configuration; reload with SIGHUP or POST /reload", "error", err)
				}
			}
			for done := false; !done; {
				select {
				case <-ctx.Done():
					done = true
				case <-hup:
					logger.Info("SIGHUP: reloading the configuration")
					_, _ = a.Reload(context.WithoutCancel(ctx))
				}
			}
			stop()
			if w != nil {
				_ = w.Close()
			}
			timeout := a.Snapshot().Gateway.Spec.ShutdownTimeout.Duration
			logger.Info("shutting down", "drain_timeout", timeout.String())
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := a.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			logger.Info("stopped")
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&paths, "config", "c", nil, "configuration file or directory (repeatable)")
	registerKubeFlags(cmd, &kf)
	cmd.Flags().BoolVar(&watch, "watch", true, "reload the configuration when its files change (file configurations)")
	cmd.Flags().DurationVar(&debounce, "watch-debounce", app.DefaultDebounce, "how long the files must stay quiet after a change before reloading")
	return cmd
}
