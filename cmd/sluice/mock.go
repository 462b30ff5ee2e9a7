package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/standin/llm"
)

func newMockCommand(g *globalFlags) *cobra.Command {
	var (
		listen string
		opts   llm.Options
	)
	cmd := &cobra.Command{
		Use:   "mock",
		Short: "Serve the offline LLM stand-in (OpenAI and Anthropic wire formats)",
		Long: "Serve deterministic OpenAI (/v1/chat/completions, /v1/embeddings, /v1/models)\n" +
			"and Anthropic (/v1/messages) APIs for demos, tests and benchmarks.\n" +
			"Per-request x-mock-* headers inject errors and delays (internal/standin/README.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.logger(os.Stderr)
			if err != nil {
				return &exitError{2, err}
			}
			opts.Logger = logger
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", listen, err)
			}
			srv := &http.Server{Handler: llm.New(opts), ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
			srv.Protocols.SetHTTP1(true)
			srv.Protocols.SetUnencryptedHTTP2(true)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			logger.Info("LLM stand-in listening", "address", ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:18000", "address to listen on")
	f.DurationVar(&opts.Latency, "latency", 0, "delay before the response headers")
	f.DurationVar(&opts.TTFT, "ttft", 0, "streaming: delay before the first content chunk")
	f.DurationVar(&opts.ChunkDelay, "chunk-delay", 0, "streaming: delay between chunks")
	f.IntVar(&opts.ChunkWords, "chunk-words", 1, "streaming: words per content chunk")
	f.IntVar(&opts.ReplyWords, "reply-words", 0, "make every answer exactly this many words (0: derived from the request)")
	f.StringVar(&opts.Model, "model", "", "model listed first by /v1/models (default mock-gpt)")
	return cmd
}
