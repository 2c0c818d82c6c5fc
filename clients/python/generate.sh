#!/usr/bin/env bash
# Regenerates the Python modules under src/founderhouse/ from proto/: messages (protobuf),
# gRPC stubs (grpcio-tools' bundled protoc) and their mypy-protobuf .pyi stubs. The old output is
# removed first, so a deleted proto leaves nothing behind; a second run changes nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$("$here/venv.sh")
# protoc finds protoc-gen-mypy and protoc-gen-mypy_grpc on PATH.
export PATH="$venv/bin:$PATH"

out="$here/src"
rm -rf "$out/founderhouse"
cd "$root/proto"
mapfile -t protos < <(find founderhouse -name '*.proto' | LC_ALL=C sort)
# `python -m grpc_tools.protoc` adds its bundled well-known types (struct, timestamp, field_mask).
if ! log=$(python -m grpc_tools.protoc -I . \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  "${protos[@]}" 2>&1); then
  echo "$log" >&2
  exit 1
fi
# mypy-protobuf names every file it writes; anything else protoc says is worth reading.
grep -v '^Writing mypy to ' <<<"$log" >&2 || true

# `founderhouse` stays a namespace package; ours are regular packages with typing markers.
for pkg in "$out/founderhouse/integrations" "$out/founderhouse/integrations/v1"; do
  printf '"""Generated from proto/ by clients/python/generate.sh. Do not edit."""\n' > "$pkg/__init__.py"
done
touch "$out/founderhouse/integrations/py.typed"
