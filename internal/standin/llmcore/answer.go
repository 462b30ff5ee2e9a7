package llmcore

import (
	"strings"
	"unicode/utf8"
)

// The answer rule. A text answer is a prefix followed by the white-space
// separated words of one message, joined by single spaces:
//
//	"Echo: " + words of the last user message          (MaxEchoWords at most)
//	"Tool result: " + words of the trailing tool results
//
// A message without words is echoed as "(empty)". With ReplyWords = N > 0
// the words after the prefix are exactly N: the message's words repeated
// cyclically, or cut. Stop sequences then cut the answer before their first
// occurrence, and a token limit cuts it after that many tokens.

const (
	// EchoPrefix starts the answer to a user message.
	EchoPrefix = "Echo:"
	// ToolResultPrefix starts the answer to tool results.
	ToolResultPrefix = "Tool result:"
	// MaxEchoWords bounds the echoed words when ReplyWords is 0.
	MaxEchoWords = 100
	// ArgumentFragmentBytes is the size of one streamed tool-argument
	// fragment.
	ArgumentFragmentBytes = 16
)

// Finish says why an answer ended.
type Finish int

const (
	// FinishDone: the answer is complete ("stop" / "end_turn").
	FinishDone Finish = iota
	// FinishLength: the token limit cut it ("length" / "max_tokens").
	FinishLength
	// FinishStopSequence: a stop sequence cut it ("stop" / "stop_sequence").
	FinishStopSequence
	// FinishToolCall: the answer is a tool call ("tool_calls" / "tool_use").
	FinishToolCall
)

// ReplyText builds prefix + " " + the words of message per the answer rule.
func ReplyText(prefix, message string, replyWords int) string {
	words := strings.Fields(message)
	if len(words) == 0 {
		words = []string{"(empty)"}
	}
	n := min(len(words), MaxEchoWords)
	if replyWords > 0 {
		n = replyWords
	}
	size := len(prefix)
	for i := range n {
		size += 1 + len(words[i%len(words)])
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(prefix)
	for i := range n {
		b.WriteByte(' ')
		b.WriteString(words[i%len(words)])
	}
	return b.String()
}

// Limit applies stop sequences and then the token limit (maxTokens <= 0
// means none) to an answer. It returns the answer as sent, why it ended and,
// for FinishStopSequence, the sequence that matched.
func Limit(text string, stops []string, maxTokens int) (string, Finish, string) {
	finish, matched := FinishDone, ""
	cut := len(text)
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && i < cut {
			cut, finish, matched = i, FinishStopSequence, s
		}
	}
	text = text[:cut]
	if maxTokens > 0 {
		if t, cutShort := CutTokens(text, maxTokens); cutShort {
			return trimTrailingSpace(t), FinishLength, ""
		}
	}
	return text, finish, matched
}

// Chunks splits an answer into streamed pieces of wordsPerChunk words. A
// piece after the first starts with the space that separated it from the
// previous one, so the pieces concatenate to text exactly. An empty text has
// no pieces.
func Chunks(text string, wordsPerChunk int) []string {
	if text == "" {
		return nil
	}
	wordsPerChunk = max(wordsPerChunk, 1)
	out := make([]string, 0, strings.Count(text, " ")/wordsPerChunk+1)
	start, spaces := 0, 0
	for i := 0; i < len(text); i++ {
		if text[i] != ' ' {
			continue
		}
		spaces++
		if spaces%wordsPerChunk == 0 && i > start {
			out = append(out, text[start:i])
			start = i
		}
	}
	return append(out, text[start:])
}

// Fragments splits s into pieces of at most size bytes, never inside a
// UTF-8 sequence. It is how tool-call arguments are streamed.
func Fragments(s string, size int) []string {
	if s == "" {
		return nil
	}
	size = max(size, utf8.UTFMax)
	out := make([]string, 0, len(s)/size+1)
	for len(s) > size {
		end := size
		for end > 0 && !utf8.RuneStart(s[end]) {
			end--
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return append(out, s)
}
