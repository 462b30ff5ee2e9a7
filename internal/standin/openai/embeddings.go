package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// maxEmbeddingInputs is OpenAI's limit on inputs per request.
const maxEmbeddingInputs = 2048

type embeddingsRequest struct {
	Model          *string         `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// embeddingInput is one input: text, or token ids.
type embeddingInput struct {
	text   string
	tokens []int64
	isIDs  bool
}

func (h *handler) embeddings(w http.ResponseWriter, r *http.Request) int {
	c, status, ok := h.begin(w, r)
	if !ok {
		return status
	}
	var req embeddingsRequest
	derr := llmcore.Decode(c.body.Bytes(), &req)
	c.release()
	if derr != nil {
		return h.fail(w, decodeError(derr))
	}
	if req.Model == nil || *req.Model == "" {
		return h.fail(w, invalid("", "", "you must provide a model parameter"))
	}
	inputs, aerr := parseEmbeddingInput(req.Input)
	if aerr != nil {
		return h.fail(w, aerr)
	}
	base64Format := false
	if req.EncodingFormat != nil {
		switch *req.EncodingFormat {
		case "float":
		case "base64":
			base64Format = true
		default:
			return h.fail(w, invalid("encoding_format", "invalid_value", "Invalid value: '%s'. Supported values are: 'float' and 'base64'.", *req.EncodingFormat))
		}
	}
	dims := llmcore.DefaultEmbeddingDimensions
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 {
			return h.fail(w, invalid("dimensions", "integer_below_min_value", "Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got %d instead.", dims))
		}
		if dims > llmcore.MaxEmbeddingDimensions {
			return h.fail(w, invalid("dimensions", "integer_above_max_value", "Invalid 'dimensions': integer above maximum value. Expected a value <= %d, but got %d instead.", llmcore.MaxEmbeddingDimensions, dims))
		}
	}
	if s := llmcore.StatusForModel(*req.Model); s != 0 {
		writeError(w, injectedError(s), c.plan.RetryAfter)
		return s
	}
	if c.plan.AbortAfter >= 0 {
		llmcore.Abort()
	}

	vec := make([]float32, dims)
	var acc []float64
	var raw []byte
	if base64Format {
		raw = make([]byte, 4*dims)
	}
	per := 24 * dims
	if base64Format {
		per = base64.StdEncoding.EncodedLen(4*dims) + 64
	}
	out := make([]byte, 0, min(128+len(inputs)*per, 4<<20))
	out = append(out, `{"object":"list","data":[`...)
	tokens := 0
	for i, in := range inputs {
		if in.isIDs {
			acc = llmcore.EmbedTokens(vec, in.tokens, acc)
			tokens += max(len(in.tokens), 1)
		} else {
			acc = llmcore.Embed(vec, in.text, acc)
			tokens += max(llmcore.CountTokens(in.text), 1)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = llmcore.AppendInt(out, i)
		out = append(out, `,"embedding":`...)
		if base64Format {
			for j, f := range vec {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(f))
			}
			out = append(out, '"')
			out = base64.StdEncoding.AppendEncode(out, raw)
			out = append(out, '"')
		} else {
			out = append(out, '[')
			for j, f := range vec {
				if j > 0 {
					out = append(out, ',')
				}
				out = strconv.AppendFloat(out, float64(f), 'g', -1, 32)
			}
			out = append(out, ']')
		}
		out = append(out, '}')
	}
	out = append(out, `],"model":`...)
	out = llmcore.AppendString(out, *req.Model)
	out = append(out, `,"usage":{"prompt_tokens":`...)
	out = llmcore.AppendInt(out, tokens)
	out = append(out, `,"total_tokens":`...)
	out = llmcore.AppendInt(out, tokens)
	out = append(out, "}}\n"...)
	llmcore.WriteJSON(w, http.StatusOK, out)
	return http.StatusOK
}

func (h *handler) fail(w http.ResponseWriter, e *apiError) int {
	writeError(w, e, 0)
	return e.status
}

// parseEmbeddingInput reads "input": a string, an array of strings, an array
// of token ids, or an array of arrays of token ids.
func parseEmbeddingInput(raw json.RawMessage) ([]embeddingInput, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, missing("input")
	}
	bad := invalid("input", "invalid_value", "'$.input' is invalid: expected a non-empty string, an array of non-empty strings, an array of token ids, or an array of arrays of token ids (at most %d inputs).", maxEmbeddingInputs)
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, bad
		}
		return []embeddingInput{{text: one}}, nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		if len(texts) == 0 || len(texts) > maxEmbeddingInputs {
			return nil, bad
		}
		out := make([]embeddingInput, len(texts))
		for i, t := range texts {
			if t == "" {
				return nil, bad
			}
			out[i] = embeddingInput{text: t}
		}
		return out, nil
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		if len(ids) == 0 {
			return nil, bad
		}
		return []embeddingInput{{tokens: ids, isIDs: true}}, nil
	}
	var idLists [][]int64
	if json.Unmarshal(raw, &idLists) == nil {
		if len(idLists) == 0 || len(idLists) > maxEmbeddingInputs {
			return nil, bad
		}
		out := make([]embeddingInput, len(idLists))
		for i, l := range idLists {
			if len(l) == 0 {
				return nil, bad
			}
			out[i] = embeddingInput{tokens: l, isIDs: true}
		}
		return out, nil
	}
	return nil, bad
}
