#!/usr/bin/env bash
# Builds the test Collector, target/otelcol/otelcol-rarch, from tests/otelcol/builder-config.yaml
# with the Collector builder (ocb), both from the Go module proxy. Cached: when the binary is
# there and target/otelcol/stamp holds the sha256 of the manifest and of this script, it does
# nothing. Go's module and build caches stay where Go keeps them (~/go/pkg/mod,
# ~/.cache/go-build), so a rebuild on a machine that built it once takes seconds, not minutes.
# Prints one line: built (with the time) or reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=$repo/target/otelcol
bin=$out/otelcol-rarch
stamp=$out/stamp
builder_version=v0.165.0

want=$(cat tests/otelcol/builder-config.yaml tests/otelcol/build.sh | sha256sum | cut -d' ' -f1)
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "otelcol: reused $bin"
  exit 0
fi

command -v go >/dev/null || { echo "otelcol: go is needed to build the Collector" >&2; exit 1; }
start=$(date +%s)
mkdir -p "$out/bin"
rm -f "$stamp"
log=$out/build.log
{
  GOBIN=$out/bin go install go.opentelemetry.io/collector/cmd/builder@$builder_version
  # the builder writes the sources to dist.output_path (target/otelcol/build) and compiles there
  "$out/bin/builder" --config tests/otelcol/builder-config.yaml
} >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "otelcol: build failed (whole log: $log)" >&2; exit 1; }
cp "$out/build/otelcol-rarch" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$want" >"$stamp"
echo "otelcol: built $bin in $(( $(date +%s) - start )) s (log: $log)"
