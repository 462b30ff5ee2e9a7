#!/usr/bin/env bash
# Runs the offline quickstart: the LLM stand-in on 127.0.0.1:18000 and the
# gateway on 127.0.0.1:8080 (admin on 127.0.0.1:9901), until Ctrl-C.
set -euo pipefail
bin=${1:-build/sluice}
cd "$(dirname "$0")/.."
"$bin" mock --listen 127.0.0.1:18000 &
mock=$!
trap 'kill $mock 2>/dev/null; wait $mock 2>/dev/null || true' EXIT
cat <<MSG
The gateway is starting on http://127.0.0.1:8080 (admin: http://127.0.0.1:9901).
Try:
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"mock-gpt","messages":[{"role":"user","content":"hello"}]}'
  curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"mock-gpt","stream":true,"messages":[{"role":"user","content":"hello"}]}'
  curl -s http://127.0.0.1:9901/metrics | grep sluice_
MSG
"$bin" run -c examples/quickstart.yaml
