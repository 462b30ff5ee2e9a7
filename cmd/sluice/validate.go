package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/config"
)

func newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check configuration files and report every problem",
		Long: "Check configuration files or directories. Every problem is printed as\n" +
			"file:line: Kind/name: field: message (hint). Exit status 1 on any error.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			snap, err := config.Load(args...)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				var list config.ErrorList
				n := 1
				if errors.As(err, &list) {
					n = len(list)
				}
				return &exitError{1, fmt.Errorf("%d error(s)", n)}
			}
			for _, w := range snap.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.Error())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d file(s), %d route(s), %d cluster(s), %d plugin(s)\n",
				len(snap.Files), len(snap.Routes), len(snap.Clusters), len(snap.WasmPlugins))
			return nil
		},
	}
}
