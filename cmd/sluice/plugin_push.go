package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/pluginoci"
)

// This file is `sluice plugin push`: it publishes a module to an OCI
// registry as Higress's builder does (internal/pluginoci).

func newPluginPushCommand() *cobra.Command {
	var (
		plainHTTP      bool
		registryConfig string
		layout         string
		spec, readme   string
	)
	cmd := &cobra.Command{
		Use:   "push FILE.wasm oci://REGISTRY/REPO:TAG",
		Short: "Push a .wasm plugin to an OCI registry as a Higress-compatible artifact",
		Long: `Push FILE.wasm to an OCI registry and print the manifest digest.

The default layout is Higress's (what its builder pushes with oras): an OCI image manifest
with config application/vnd.unknown.config.v1+json "{}" and a last layer plugin.tar.gz
(application/vnd.oci.image.layer.v1.tar+gzip) holding plugin.wasm; --spec and --readme add
spec.yaml (application/vnd.module.wasm.spec.v1+yaml) and README.md
(application/vnd.module.wasm.doc.v1+markdown) layers before it. --layout wasm pushes the
module itself as an application/vnd.module.wasm.content.layer.v1+wasm layer instead.

Credentials come from --registry-config (a Docker config.json), else anonymous. Loopback
registries (localhost, 127.0.0.1, ::1) are spoken to over plain HTTP; --plain-http does
it for any registry.`,
		Example: `  sluice plugin push my-plugin.wasm oci://registry.example.com/plugins/my-plugin:1.0.0
  sluice plugin push my-plugin.wasm oci://localhost:5000/my-plugin:1.0.0 --registry-config ~/.docker/config.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
				return fmt.Errorf("%s is not a WebAssembly module", args[0])
			}
			if !strings.HasPrefix(args[1], "oci://") {
				return fmt.Errorf("%q: the destination is oci://REGISTRY/REPO:TAG", args[1])
			}
			ref, err := pluginoci.ParseRef(args[1])
			if err != nil {
				return err
			}
			if ref.Digest != "" {
				return fmt.Errorf("%q: push to a tag, not a digest", args[1])
			}
			opts := pluginoci.PushOptions{Layout: layout}
			for _, f := range []struct{ path, name, mediaType string }{
				{spec, "spec.yaml", pluginoci.MediaTypeHigressSpec},
				{readme, "README.md", pluginoci.MediaTypeHigressReadme},
			} {
				if f.path == "" {
					continue
				}
				if layout == pluginoci.LayoutWasm {
					return fmt.Errorf("--spec and --readme need --layout %s", pluginoci.LayoutHigress)
				}
				data, err := os.ReadFile(f.path)
				if err != nil {
					return err
				}
				opts.Files = append(opts.Files, pluginoci.File{Name: f.name, MediaType: f.mediaType, Data: data})
			}
			client := &pluginoci.Client{CredentialsFile: registryConfig, UserAgent: "sluice/" + versionString()}
			if plainHTTP {
				client.PlainHTTP = func(string) bool { return true }
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			desc, err := client.Push(ctx, wasm, ref, opts)
			if err != nil {
				return fmt.Errorf("push %s: %w", args[1], err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pushed %s (%d bytes) to oci://%s\n", filepath.Base(args[0]), len(wasm), ref)
			fmt.Fprintln(cmd.OutOrStdout(), desc.Digest.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&plainHTTP, "plain-http", false, "use plain HTTP instead of HTTPS")
	cmd.Flags().StringVar(&registryConfig, "registry-config", "", "Docker config.json with the registry's credentials")
	cmd.Flags().StringVar(&layout, "layout", pluginoci.LayoutHigress, "artifact layout: higress (plugin.tar.gz layer) or wasm (raw module layer)")
	cmd.Flags().StringVar(&spec, "spec", "", "spec.yaml to add as a layer (Higress console metadata)")
	cmd.Flags().StringVar(&readme, "readme", "", "README.md to add as a layer")
	return cmd
}
