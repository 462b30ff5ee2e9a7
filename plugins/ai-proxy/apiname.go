package main

import (
	"regexp"
	"strings"
)

// This file is the incoming endpoint detection of plugins-C.md §6.4: the
// request path's suffix names the API.

// apiName is an API, named as in Higress's capabilities map.
type apiName string

// The APIs this build detects.
const (
	apiChat          apiName = "openai/v1/chatcompletions"
	apiCompletions   apiName = "openai/v1/completions"
	apiEmbeddings    apiName = "openai/v1/embeddings"
	apiModels        apiName = "openai/v1/models"
	apiImageGen      apiName = "openai/v1/imagegeneration"
	apiImageVariant  apiName = "openai/v1/imagevariation"
	apiImageEdit     apiName = "openai/v1/imageedit"
	apiAudioSpeech   apiName = "openai/v1/audiospeech"
	apiTranscription apiName = "openai/v1/audiotranscription"
	apiTranslation   apiName = "openai/v1/audiotranslation"
	apiRealtime      apiName = "openai/v1/realtime"
	apiResponses     apiName = "openai/v1/responses"
	apiFiles         apiName = "openai/v1/files"
	apiBatches       apiName = "openai/v1/batches"
	apiFineTuning    apiName = "openai/v1/finetuningjobs"
	apiVideos        apiName = "openai/v1/videos"
	// apiOpenAIResource is any ID path below files, batches, fine_tuning
	// or videos (/v1/files/{id}/content, …); forwarded with its path.
	apiOpenAIResource apiName = "openai/v1/resource"
	apiMessages       apiName = "anthropic/v1/messages"
	apiComplete       apiName = "anthropic/v1/complete"
	apiRerank         apiName = "cohere/v1/rerank"
)

// capabilityKeys are the keys provider.capabilities accepts (§6.3).
var capabilityKeys = []string{
	"openai/v1/chatcompletions", "openai/v1/embeddings", "openai/v1/imagegeneration", "openai/v1/imagevariation",
	"openai/v1/imageedit", "openai/v1/audiospeech", "openai/v1/audiotranscription", "openai/v1/audiotranslation",
	"openai/v1/realtime", "openai/v1/responses", "cohere/v1/rerank", "openai/v1/videos", "openai/v1/retrievevideo",
	"openai/v1/retrievevideocontent", "openai/v1/videoremix",
}

// standardPaths are OpenAI's own paths for each API (and Anthropic's for
// its two), the suffixes detection looks for, in detection order.
var standardPaths = []struct {
	suffix string
	api    apiName
}{
	{"/v1/chat/completions", apiChat},
	{"/v1/completions", apiCompletions},
	{"/v1/embeddings", apiEmbeddings},
	{"/v1/audio/speech", apiAudioSpeech},
	{"/v1/audio/transcriptions", apiTranscription},
	{"/v1/audio/translations", apiTranslation},
	{"/v1/realtime", apiRealtime},
	{"/v1/images/generations", apiImageGen},
	{"/v1/images/variations", apiImageVariant},
	{"/v1/images/edits", apiImageEdit},
	{"/v1/batches", apiBatches},
	{"/v1/files", apiFiles},
	{"/v1/models", apiModels},
	{"/v1/fine_tuning/jobs", apiFineTuning},
	{"/v1/responses", apiResponses},
	{"/v1/videos", apiVideos},
	{"/v1/messages", apiMessages},
	{"/v1/complete", apiComplete},
	{"/v1/rerank", apiRerank},
}

// resourcePath matches OpenAI's ID paths; group 1 is the part from /v1 on.
var resourcePath = regexp.MustCompile(`(/v1/(?:files|batches|videos|fine_tuning/jobs|fine_tuning/checkpoints)/[^/]+(?:/[a-z_]+)?)$`)

// standardPath returns OpenAI's path for api ("" when it has none).
func standardPath(api apiName) string {
	for _, s := range standardPaths {
		if s.api == api {
			return s.suffix
		}
	}
	return ""
}

// detectAPI names the API of path (query removed). For an ID path it
// also returns the path from /v1 on.
func detectAPI(path string) (apiName, string) {
	for _, s := range standardPaths {
		if strings.HasSuffix(path, s.suffix) {
			return s.api, s.suffix
		}
	}
	if m := resourcePath.FindStringSubmatch(path); m != nil {
		return apiOpenAIResource, m[1]
	}
	return "", ""
}

// splitQuery splits a :path into path and query (with its '?', "" when
// none).
func splitQuery(p string) (string, string) {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// withQuery appends query (starting with '?' or empty) to path, joining
// with '&' when path already has one.
func withQuery(path, query string) string {
	if query == "" {
		return path
	}
	if strings.Contains(path, "?") {
		return path + "&" + query[1:]
	}
	return path + query
}
