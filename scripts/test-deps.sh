#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine that has
# only Go. Every tool listed here is required: a missing one fails the run,
# it never makes a test skip.
#
# Besides the C toolchain for the race detector, the Proxy-Wasm conformance
# tests build their test plugins (test/plugins) from source with:
#   C               clang 14 + wasm-ld + wasi-libc + the wasm32 builtins
#   Rust            Debian's /usr/bin/rustc with the wasm32 standard library
#   AssemblyScript  node + npm, and `npm ci` in test/plugins/as
#   inspection      wabt (wasm-objdump, wasm-validate)
# and run callout tests against a real redis-server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=()
# The race detector needs a C toolchain (cgo).
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# C test plugins.
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need+=(lld)
installed wasi-libc || need+=(wasi-libc)
installed libclang-rt-14-dev-wasm32 || need+=(libclang-rt-14-dev-wasm32)
# Inspecting built plugins.
command -v wasm-objdump >/dev/null 2>&1 || need+=(wabt)
# Rust test plugins: Debian's rustc (a rustup toolchain on PATH may lack wasm targets).
[ -x /usr/bin/rustc ] || need+=(rustc)
installed libstd-rust-dev-wasm32 || need+=(libstd-rust-dev-wasm32)
# AssemblyScript test plugin.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  need+=(nodejs npm)
fi
# Redis callout tests.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies: all packages present"
else
  echo "test dependencies: installing ${need[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The AssemblyScript plugin's compiler comes from npm, pinned by its lock file.
if [ ! -d "$root/test/plugins/as/node_modules" ]; then
  echo "test dependencies: npm ci in test/plugins/as"
  (cd "$root/test/plugins/as" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Verify: a tool that is still missing fails the run.
missing=()
for tool in gcc clang wasm-ld wasm-objdump node npm redis-server /usr/bin/rustc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
for pkg in wasi-libc libclang-rt-14-dev-wasm32 libstd-rust-dev-wasm32; do
  installed "$pkg" || missing+=("$pkg")
done
[ -x "$root/test/plugins/as/node_modules/.bin/asc" ] || missing+=("test/plugins/as/node_modules/.bin/asc")
if [ ${#missing[@]} -ne 0 ]; then
  echo "test dependencies: still missing after install: ${missing[*]}" >&2
  exit 1
fi
