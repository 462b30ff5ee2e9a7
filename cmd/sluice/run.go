package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
)

func newRunCommand(g *globalFlags) *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "run -c FILE|DIR [-c ...]",
		Short: "Run the gateway",
		Long: "Run the gateway with the configuration in the given files or directories.\n" +
			"Any configuration error stops it before it listens.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			a, err := app.New(ctx, snap, app.Options{Logger: logger, Version: versionString()})
			if err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				_ = a.Shutdown(context.Background())
				return err
			}
			<-ctx.Done()
			stop()
			timeout := snap.Gateway.Spec.ShutdownTimeout.Duration
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
	return cmd
}
