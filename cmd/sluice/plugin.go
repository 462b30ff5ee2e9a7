package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/wasmhost"
)

func newPluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Work with Proxy-Wasm plugin modules",
	}
	cmd.AddCommand(newPluginInspectCommand(), newPluginBuildCommand())
	cmd.AddCommand(newPluginServeCommand())
	cmd.AddCommand(newPluginPushCommand())
	return cmd
}

func newPluginInspectCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE.wasm",
		Short: "Show a module's ABI version, imports (flagging ones the host lacks), exports, size, sha256 and compile time",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ins, err := wasmhost.Inspect(context.Background(), wasm)
			if err != nil {
				return &exitError{1, fmt.Errorf("%s: %w", args[0], err)}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(ins); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "file\t%s\n", args[0])
				fmt.Fprintf(tw, "size\t%d bytes\n", ins.Size)
				fmt.Fprintf(tw, "sha256\t%s\n", ins.SHA256)
				fmt.Fprintf(tw, "abi\t%s\n", ins.ABI)
				fmt.Fprintf(tw, "compile\t%s (no cache)\n", ins.CompileTime.Round(1e6))
				if ins.LoopGuardProblem != "" {
					fmt.Fprintf(tw, "loop guard\t%s (%s)\n", ins.LoopGuard, ins.LoopGuardProblem)
				} else {
					fmt.Fprintf(tw, "loop guard\t%s\n", ins.LoopGuard)
				}
				_ = tw.Flush()
				fmt.Fprintf(out, "\nimports (%d):\n", len(ins.Imports))
				for _, im := range ins.Imports {
					mark := "  "
					if !im.Provided {
						mark = "! "
					}
					fmt.Fprintf(out, "  %s%s.%s\n", mark, im.Module, im.Name)
				}
				fmt.Fprintf(out, "\nexports (%d):\n", len(ins.Exports))
				for _, e := range ins.Exports {
					fmt.Fprintf(out, "    %s\n", e)
				}
				if len(ins.Problems) > 0 {
					fmt.Fprintln(out, "\nthe host would refuse this module:")
					for _, p := range ins.Problems {
						fmt.Fprintf(out, "  - %s\n", p)
					}
				} else {
					fmt.Fprintln(out, "\nloadable: yes")
				}
			}
			if len(ins.Problems) > 0 {
				return &exitError{1, fmt.Errorf("%s is not loadable", args[0])}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
