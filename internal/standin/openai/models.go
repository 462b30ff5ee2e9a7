package openai

import (
	"net/http"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// mockModels are listed after Options.Model by GET /v1/models.
var mockModels = []string{"mock-gpt", "mock-gpt-mini", "mock-embedding", "mock-claude"}

// modelList builds the GET /v1/models body: the default model first, then
// the mock ones, without duplicates.
func modelList(first string) []byte {
	ids := []string{first}
	for _, m := range mockModels {
		if m != first {
			ids = append(ids, m)
		}
	}
	b := []byte(`{"object":"list","data":[`)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendModel(b, id)
	}
	return append(b, "]}\n"...)
}

func appendModel(dst []byte, id string) []byte {
	dst = append(dst, `{"id":`...)
	dst = llmcore.AppendString(dst, id)
	dst = append(dst, `,"object":"model","created":`...)
	dst = llmcore.AppendInt(dst, llmcore.Created)
	return append(dst, `,"owned_by":"sluice-standin"}`...)
}

func (h *handler) listModels(w http.ResponseWriter, r *http.Request) int {
	if _, status, ok := h.begin(w, r); !ok {
		return status
	}
	llmcore.WriteJSON(w, http.StatusOK, h.models)
	return http.StatusOK
}

// getModel answers GET /v1/models/{id}: the stand-in serves every model
// name, so every id exists.
func (h *handler) getModel(w http.ResponseWriter, r *http.Request, id string) int {
	if _, status, ok := h.begin(w, r); !ok {
		return status
	}
	llmcore.WriteJSON(w, http.StatusOK, append(appendModel(nil, id), '\n'))
	return http.StatusOK
}
