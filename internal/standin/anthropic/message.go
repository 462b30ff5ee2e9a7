package anthropic

import (
	"net/http"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// answer is the answer to a Messages request, the same for both modes.
type answer struct {
	text         string // when not a tool call
	finish       llmcore.Finish
	stopSequence string // the stop sequence that matched
	toolID       string
	toolName     string
	toolInput    string // compact JSON object
	inputTokens  int
	outputTokens int
}

func answerMessages(in *messagesInput, plan llmcore.Plan, d llmcore.Digest) answer {
	a := answer{inputTokens: in.inputTokens}
	if in.tool != nil {
		a.finish = llmcore.FinishToolCall
		a.toolID = d.ID("toolu_", 1)
		a.toolName = in.tool.Name
		a.toolInput = string(llmcore.Arguments(in.tool.InputSchema, llmcore.ArgumentWord(in.echo)))
		a.outputTokens = llmcore.CountTokens(a.toolName) + llmcore.CountTokens(a.toolInput)
		return a
	}
	prefix := llmcore.EchoPrefix
	if in.toolResult {
		prefix = llmcore.ToolResultPrefix
	}
	a.text, a.finish, a.stopSequence = llmcore.Limit(llmcore.ReplyText(prefix, in.echo, plan.ReplyWords), in.stops, in.maxTokens)
	a.outputTokens = llmcore.CountTokens(a.text)
	return a
}

func stopReason(f llmcore.Finish) string {
	switch f {
	case llmcore.FinishLength:
		return "max_tokens"
	case llmcore.FinishStopSequence:
		return "stop_sequence"
	case llmcore.FinishToolCall:
		return "tool_use"
	}
	return "end_turn"
}

// appendMessage appends a complete message object.
func appendMessage(dst []byte, id, model string, a *answer) []byte {
	dst = appendMessageHead(dst, id, model)
	dst = append(dst, `,"content":[`...)
	if a.finish == llmcore.FinishToolCall {
		dst = appendToolUse(dst, a, a.toolInput)
	} else {
		dst = append(dst, `{"type":"text","text":`...)
		dst = llmcore.AppendString(dst, a.text)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"stop_reason":"`...)
	dst = append(dst, stopReason(a.finish)...)
	dst = append(dst, `","stop_sequence":`...)
	dst = llmcore.AppendNullableString(dst, a.stopSequence)
	dst = append(dst, `,"usage":`...)
	dst = appendUsage(dst, a.inputTokens, a.outputTokens)
	return append(dst, "}\n"...)
}

func appendMessageHead(dst []byte, id, model string) []byte {
	dst = append(dst, `{"id":`...)
	dst = llmcore.AppendString(dst, id)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	return llmcore.AppendString(dst, model)
}

func appendToolUse(dst []byte, a *answer, input string) []byte {
	dst = append(dst, `{"type":"tool_use","id":`...)
	dst = llmcore.AppendString(dst, a.toolID)
	dst = append(dst, `,"name":`...)
	dst = llmcore.AppendString(dst, a.toolName)
	dst = append(dst, `,"input":`...)
	dst = append(dst, input...)
	return append(dst, '}')
}

func appendUsage(dst []byte, input, output int) []byte {
	dst = append(dst, `{"input_tokens":`...)
	dst = llmcore.AppendInt(dst, input)
	dst = append(dst, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":`...)
	dst = llmcore.AppendInt(dst, output)
	return append(dst, `,"service_tier":"standard"}`...)
}

// streamMessage answers with the Messages event stream:
//
//	message_start → content_block_start → ping → content_block_delta… →
//	content_block_stop → message_delta → message_stop
func streamMessage(w http.ResponseWriter, r *http.Request, plan llmcore.Plan, in *messagesInput, a *answer, id string) {
	s, err := llmcore.StartStream(w, r, plan)
	if err != nil || s.WaitFirst() != nil {
		return
	}
	s.Buf = append(s.Buf[:0], "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"...)
	s.Buf = appendMessageHead(s.Buf, id, in.model)
	s.Buf = append(s.Buf, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	// Like the real API, message_start reports the output tokens so far
	// (1); message_delta carries the final count.
	s.Buf = appendUsage(s.Buf, a.inputTokens, 1)
	s.Buf = append(s.Buf, "}}\n\n"...)
	if s.Send(s.Buf) != nil {
		return
	}

	s.Buf = append(s.Buf[:0], "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"...)
	var pieces []string
	if a.finish == llmcore.FinishToolCall {
		s.Buf = appendToolUse(s.Buf, a, "{}")
		pieces = llmcore.Fragments(a.toolInput, llmcore.ArgumentFragmentBytes)
	} else {
		s.Buf = append(s.Buf, `{"type":"text","text":""}`...)
		pieces = llmcore.Chunks(a.text, plan.ChunkWords)
	}
	s.Buf = append(s.Buf, "}\n\n"...)
	if s.Send(s.Buf) != nil {
		return
	}
	if s.Send([]byte("event: ping\ndata: {\"type\":\"ping\"}\n\n")) != nil {
		return
	}

	for _, p := range pieces {
		if s.BeforeContent() != nil {
			return
		}
		s.Buf = append(s.Buf[:0], "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"...)
		if a.finish == llmcore.FinishToolCall {
			s.Buf = append(s.Buf, `{"type":"input_json_delta","partial_json":`...)
		} else {
			s.Buf = append(s.Buf, `{"type":"text_delta","text":`...)
		}
		s.Buf = llmcore.AppendString(s.Buf, p)
		s.Buf = append(s.Buf, "}}\n\n"...)
		if s.SendContent(s.Buf) != nil {
			return
		}
	}
	s.BeforeClose()

	if s.Send([]byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")) != nil {
		return
	}
	s.Buf = append(s.Buf[:0], "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	s.Buf = append(s.Buf, stopReason(a.finish)...)
	s.Buf = append(s.Buf, `","stop_sequence":`...)
	s.Buf = llmcore.AppendNullableString(s.Buf, a.stopSequence)
	s.Buf = append(s.Buf, `},"usage":{"output_tokens":`...)
	s.Buf = llmcore.AppendInt(s.Buf, a.outputTokens)
	s.Buf = append(s.Buf, "}}\n\n"...)
	if s.Send(s.Buf) != nil {
		return
	}
	_ = s.Send([]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
}
