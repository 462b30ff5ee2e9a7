package openai_test

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"testing"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluicegw/sluice/internal/standin/openai"
)

// TestOfficialSDK drives the stand-in with the official OpenAI Go SDK: if the
// SDK can decode every answer, the wire format is right.
func TestOfficialSDK(t *testing.T) {
	srv := httptest.NewServer(openai.New(openai.Options{}))
	defer srv.Close()
	client := sdk.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := context.Background()
	params := sdk.ChatCompletionNewParams{
		Model:    shared.ChatModel("gpt-4o-mini"),
		Messages: []sdk.ChatCompletionMessageParamUnion{sdk.SystemMessage("Be terse."), sdk.UserMessage("Say hello to the gateway")},
	}

	t.Run("chat completion", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Choices[0].Message.Content; got != "Echo: Say hello to the gateway" {
			t.Errorf("content %q", got)
		}
		if c.Choices[0].FinishReason != "stop" || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens || c.Usage.CompletionTokens != 7 {
			t.Errorf("finish %q usage %+v", c.Choices[0].FinishReason, c.Usage)
		}
	})

	t.Run("streaming with usage", func(t *testing.T) {
		p := params
		p.StreamOptions = sdk.ChatCompletionStreamOptionsParam{IncludeUsage: sdk.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(ctx, p)
		var acc sdk.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if chunks < 7 {
			t.Errorf("%d chunks", chunks)
		}
		if got := acc.Choices[0].Message.Content; got != "Echo: Say hello to the gateway" {
			t.Errorf("accumulated content %q", got)
		}
		if acc.Usage.CompletionTokens != 7 || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("usage %+v finish %q", acc.Usage, acc.Choices[0].FinishReason)
		}
	})

	t.Run("streaming tool call", func(t *testing.T) {
		p := params
		p.Tools = []sdk.ChatCompletionToolUnionParam{sdk.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "lookup",
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}, "limit": map[string]any{"type": "integer"}}},
		})}
		stream := client.Chat.Completions.NewStreaming(ctx, p)
		var acc sdk.ChatCompletionAccumulator
		var finished *sdk.FinishedChatCompletionToolCall
		for stream.Next() {
			acc.AddChunk(stream.Current())
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = &tc
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if finished == nil || finished.Name != "lookup" || finished.Arguments != `{"limit":1,"query":"gateway"}` {
			t.Errorf("finished tool call %+v", finished)
		}
		if acc.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("finish %q", acc.Choices[0].FinishReason)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		for _, format := range []sdk.EmbeddingNewParamsEncodingFormat{sdk.EmbeddingNewParamsEncodingFormatFloat, sdk.EmbeddingNewParamsEncodingFormatBase64} {
			e, err := client.Embeddings.New(ctx, sdk.EmbeddingNewParams{
				Model:          sdk.EmbeddingModelTextEmbedding3Small,
				Input:          sdk.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first", "second text"}},
				Dimensions:     sdk.Int(64),
				EncodingFormat: format,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Data) != 2 || e.Usage.PromptTokens != 3 {
				t.Fatalf("%s: %d items, usage %+v", format, len(e.Data), e.Usage)
			}
			if format == sdk.EmbeddingNewParamsEncodingFormatFloat {
				var s float64
				for _, f := range e.Data[1].Embedding {
					s += f * f
				}
				if len(e.Data[1].Embedding) != 64 || math.Abs(s-1) > 1e-4 {
					t.Errorf("%d dimensions, squared norm %v", len(e.Data[1].Embedding), s)
				}
			}
		}
	})

	t.Run("error shape", func(t *testing.T) {
		_, err := client.Chat.Completions.New(ctx, params, option.WithHeader("X-Mock-Status", "429"))
		var apiErr *sdk.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v is not an *openai.Error", err)
		}
		if apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Type != "requests" {
			t.Errorf("error %+v", apiErr)
		}
	})
}
