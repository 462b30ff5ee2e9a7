package openai

import (
	"net/http"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

const systemFingerprint = "fp_sluice_mock"

// chatAnswer is the answer to a chat request, the same for both modes.
type chatAnswer struct {
	text             string // content, when not a tool call
	finish           llmcore.Finish
	toolID           string
	toolName         string
	toolArgs         string
	promptTokens     int
	completionTokens int
}

func answerChat(in *chatInput, plan llmcore.Plan, d llmcore.Digest) chatAnswer {
	a := chatAnswer{promptTokens: in.promptTokens}
	if in.tool != nil {
		a.finish = llmcore.FinishToolCall
		a.toolID = d.ID("call_", 1)
		a.toolName = in.tool.Function.Name
		a.toolArgs = string(llmcore.Arguments(in.tool.Function.Parameters, llmcore.ArgumentWord(in.echo)))
		a.completionTokens = llmcore.CountTokens(a.toolName) + llmcore.CountTokens(a.toolArgs)
		return a
	}
	prefix := llmcore.EchoPrefix
	if in.lastRole == "tool" || in.lastRole == "function" {
		prefix = llmcore.ToolResultPrefix
	}
	a.text, a.finish, _ = llmcore.Limit(llmcore.ReplyText(prefix, in.echo, plan.ReplyWords), in.stops, in.maxTokens)
	a.completionTokens = llmcore.CountTokens(a.text)
	return a
}

func finishReason(f llmcore.Finish) string {
	switch f {
	case llmcore.FinishLength:
		return "length"
	case llmcore.FinishToolCall:
		return "tool_calls"
	}
	return "stop"
}

func (h *handler) chat(w http.ResponseWriter, r *http.Request) int {
	c, status, ok := h.begin(w, r)
	if !ok {
		return status
	}
	in, aerr := parseChat(c.body.Bytes())
	c.release()
	if aerr != nil {
		writeError(w, aerr, 0)
		return aerr.status
	}
	if s := llmcore.StatusForModel(in.model); s != 0 {
		writeError(w, injectedError(s), c.plan.RetryAfter)
		return s
	}
	ans := answerChat(in, c.plan, c.digest)
	id := c.digest.ID("chatcmpl-", 0)
	if in.stream {
		streamChat(w, r, c.plan, in, &ans, id)
		return http.StatusOK
	}
	if c.plan.AbortAfter >= 0 {
		llmcore.Abort()
	}
	b := llmcore.GetBuffer()
	*b = appendCompletion(*b, id, in.model, &ans)
	llmcore.WriteJSON(w, http.StatusOK, *b)
	llmcore.PutBuffer(b)
	return http.StatusOK
}

// appendCompletion appends a chat.completion object.
func appendCompletion(dst []byte, id, model string, a *chatAnswer) []byte {
	dst = append(dst, `{"id":`...)
	dst = llmcore.AppendString(dst, id)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = llmcore.AppendInt(dst, llmcore.Created)
	dst = append(dst, `,"model":`...)
	dst = llmcore.AppendString(dst, model)
	dst = append(dst, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if a.finish == llmcore.FinishToolCall {
		dst = append(dst, `null,"tool_calls":[{"id":`...)
		dst = llmcore.AppendString(dst, a.toolID)
		dst = append(dst, `,"type":"function","function":{"name":`...)
		dst = llmcore.AppendString(dst, a.toolName)
		dst = append(dst, `,"arguments":`...)
		dst = llmcore.AppendString(dst, a.toolArgs)
		dst = append(dst, `}}]`...)
	} else {
		dst = llmcore.AppendString(dst, a.text)
	}
	dst = append(dst, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"`...)
	dst = append(dst, finishReason(a.finish)...)
	dst = append(dst, `"}],"usage":`...)
	dst = appendUsage(dst, a.promptTokens, a.completionTokens)
	dst = append(dst, `,"service_tier":"default","system_fingerprint":"`+systemFingerprint+`"}`...)
	return append(dst, '\n')
}

func appendUsage(dst []byte, prompt, completion int) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = llmcore.AppendInt(dst, prompt)
	dst = append(dst, `,"completion_tokens":`...)
	dst = llmcore.AppendInt(dst, completion)
	dst = append(dst, `,"total_tokens":`...)
	dst = llmcore.AppendInt(dst, prompt+completion)
	return append(dst, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// streamChat answers with chat.completion.chunk events:
//
//	role chunk → content chunks (or the tool call header, then argument
//	fragments) → finish chunk → usage chunk (include_usage) → [DONE]
func streamChat(w http.ResponseWriter, r *http.Request, plan llmcore.Plan, in *chatInput, a *chatAnswer, id string) {
	s, err := llmcore.StartStream(w, r, plan)
	if err != nil || s.WaitFirst() != nil {
		return
	}
	head := append([]byte(`data: {"id":`), llmcore.AppendString(nil, id)...)
	head = append(head, `,"object":"chat.completion.chunk","created":`...)
	head = llmcore.AppendInt(head, llmcore.Created)
	head = append(head, `,"model":`...)
	head = llmcore.AppendString(head, in.model)
	head = append(head, `,"service_tier":"default","system_fingerprint":"`+systemFingerprint+`","choices":[`...)
	tail := "]}\n\n"
	if in.includeUsage {
		tail = `],"usage":null}` + "\n\n"
	}
	event := func(choice func([]byte) []byte) []byte {
		s.Buf = append(s.Buf[:0], head...)
		s.Buf = choice(s.Buf)
		s.Buf = append(s.Buf, tail...)
		return s.Buf
	}

	if a.finish == llmcore.FinishToolCall {
		first := event(func(b []byte) []byte {
			b = append(b, `{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":`...)
			b = llmcore.AppendString(b, a.toolID)
			b = append(b, `,"type":"function","function":{"name":`...)
			b = llmcore.AppendString(b, a.toolName)
			return append(b, `,"arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}`...)
		})
		if s.Send(first) != nil {
			return
		}
		for _, frag := range llmcore.Fragments(a.toolArgs, llmcore.ArgumentFragmentBytes) {
			if s.BeforeContent() != nil {
				return
			}
			ev := event(func(b []byte) []byte {
				b = append(b, `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":`...)
				b = llmcore.AppendString(b, frag)
				return append(b, `}}]},"logprobs":null,"finish_reason":null}`...)
			})
			if s.SendContent(ev) != nil {
				return
			}
		}
	} else {
		first := event(func(b []byte) []byte {
			return append(b, `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`...)
		})
		if s.Send(first) != nil {
			return
		}
		for _, chunk := range llmcore.Chunks(a.text, plan.ChunkWords) {
			if s.BeforeContent() != nil {
				return
			}
			ev := event(func(b []byte) []byte {
				b = append(b, `{"index":0,"delta":{"content":`...)
				b = llmcore.AppendString(b, chunk)
				return append(b, `},"logprobs":null,"finish_reason":null}`...)
			})
			if s.SendContent(ev) != nil {
				return
			}
		}
	}
	s.BeforeClose()

	s.Buf = append(s.Buf[:0], head...)
	s.Buf = append(s.Buf, `{"index":0,"delta":{},"logprobs":null,"finish_reason":"`...)
	s.Buf = append(s.Buf, finishReason(a.finish)...)
	s.Buf = append(s.Buf, `"}`...)
	s.Buf = append(s.Buf, tail...)
	if s.Send(s.Buf) != nil {
		return
	}
	if in.includeUsage {
		s.Buf = append(s.Buf[:0], head...)
		s.Buf = append(s.Buf, `],"usage":`...)
		s.Buf = appendUsage(s.Buf, a.promptTokens, a.completionTokens)
		s.Buf = append(s.Buf, "}\n\n"...)
		if s.Send(s.Buf) != nil {
			return
		}
	}
	_ = s.Send([]byte("data: [DONE]\n\n"))
}
