#!/bin/sh
# The Go binding beside the OpenTelemetry Go SDK (issue 33: "beside what a Go user would pick
# instead"). `make bench-gosdk` runs it; `bench/run.sh --only gosdk` too.
#
#   bench/gosdk.sh [--quick]
#
# bench/gosdk/ (its own Go module; the binding through a replace of ../../bindings/go) is built
# as target/bench/gosdk against target/release/librarch_logging.so. A Collector
# (target/otelcol/otelcol-rarch, `make collector`, configured by bench/otelcol.yaml as in
# bench/run.sh's otlp section) receives OTLP/HTTP and exports to the local receiver
# (-otlp-count-only), whose /otlp/stats counts the records the Collector delivered.
# Each round runs three processes, one after the other, each sending GOSDK_COUNT records
# (200000; --quick 20000) to the Collector:
#   binding    rarchlog.New with Sink: SinkOTLP (http/protobuf, batch_max_entries 512), Info
#   sdk        sdk/log's BatchProcessor (export batch 512, its default queue of 2,048) with
#              otlploghttp (protobuf), Logger.Emit
#   sdk-queue  the same with the queue raised to GOSDK_COUNT
# GOSDK_ROUNDS rounds (3; --quick 1), the receiver's counters cleared before each process.
# GOSDK_OPTS="k=v,..." gives the binding's row more library options (e.g. connections=2).
# Output: the RESULT lines (one per process; see bench/gosdk/main.go) on stdout and in
# bench/gosdk-results.txt, then the table with the medians and issue 33's targets on stdout
# and in bench/gosdk-results.md. Exit 1 if the binding did not deliver every record.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=${BENCH_QUICK:-0}
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a (use --quick)" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then N=20000; ROUNDS=1; else N=200000; ROUNDS=3; fi
N=${GOSDK_COUNT:-$N}
ROUNDS=${GOSDK_ROUNDS:-$ROUNDS}
PY=${PYTHON:-python3}
say() { printf '== %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { echo "gosdk.sh: go is required" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "gosdk.sh: curl is required" >&2; exit 1; }
if [ -z "${MAKELEVEL:-}" ] || [ ! -f target/release/librarch_logging.so ] || [ ! -x examples/receiver/receiver ]; then
  say "building (make lib receiver)"
  make -s lib receiver >&2
fi
if [ ! -x target/otelcol/otelcol-rarch ] || [ -z "${MAKELEVEL:-}" ]; then
  say "the Collector (make collector)"
  make -s collector >&2
fi
mkdir -p target/bench
say "building bench/gosdk (go build)"
(cd bench/gosdk && CGO_ENABLED=1 go build -o "$ROOT/target/bench/gosdk.$$" .) >&2
BIN=$ROOT/target/bench/gosdk.$$
got=$(ldd "$BIN" | sed -n 's/.*librarch_logging[^ ]* => \([^ ]*\) .*/\1/p')
case $got in
  "$ROOT"/target/release/*|"$ROOT"/bindings/go/../../target/release/*) ;;
  *) echo "gosdk.sh: $BIN loads librarch_logging from ${got:-nowhere}, not target/release (LD_LIBRARY_PATH?)" >&2; exit 1 ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rarch-gosdk.XXXXXX")
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $PIDS; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  rm -f "$BIN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. bench/otelcol.sh   # start_collector

# The receiver: counts the OTLP records the Collector exports to it.
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$ROOT/examples/receiver/receiver" -key "$KEY" -addr-file "$WORK/receiver.addr" -quiet -keep=false \
  -otlp-count-only 2>"$WORK/receiver.log" &
PIDS="$PIDS $!"
i=0
while [ ! -s "$WORK/receiver.addr" ]; do
  i=$((i + 1)); [ $i -gt 200 ] && { echo "gosdk.sh: the receiver did not start" >&2; exit 1; }
  sleep 0.05
done
OTR=$(cat "$WORK/receiver.addr")

# The Collector (bench/otelcol.sh), as in bench/run.sh's otlp section.
start_collector "$OTR"

OUT=$WORK/results.txt
: >"$OUT"
{
  echo "MACHINE date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "MACHINE version=$(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "MACHINE nproc=$(nproc)"
  echo "MACHINE load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "MACHINE gosdk_count=$N gosdk_rounds=$ROUNDS go=$(go env GOVERSION)"
} >>"$OUT"
say "$N records a row, $ROUNDS round(s): binding, SDK (default queue), SDK (queue of $N)"
FAIL=0
r=1
while [ $r -le "$ROUNDS" ]; do
  for impl in binding sdk sdk-queue; do
    curl -sf -X POST "http://$OTR/admin/reset" >/dev/null
    rc=0
    line=$(timeout -k 10 900 "$BIN" run $impl "$N" "http://127.0.0.1:$COL_PORT/v1/logs" \
      "http://$OTR/otlp/stats" 120) || rc=$?
    case $line in
      "RESULT bench=gosdk "*) ;;
      *) line="RESULT bench=gosdk impl=$impl count=$N delivered=0 dropped=$N" ;;
    esac
    [ $rc = 0 ] || line="$line exit=$rc"
    echo "$line round=$r" | tee -a "$OUT" | sed 's/^/   /' >&2
    if [ $impl = binding ] && ! printf '%s\n' "$line" | grep -q " delivered=$N dropped=0 "; then
      say "   FAIL: the binding did not deliver every record (round $r, exit $rc)"; FAIL=1
    fi
  done
  r=$((r + 1))
done
if grep -qiE 'error|panic' "$WORK/otelcol.log"; then
  say "the Collector logged errors:"; grep -iE 'error|panic' "$WORK/otelcol.log" | tail -n 5 >&2
fi
cp "$OUT" bench/gosdk-results.txt
"$BIN" report "$OUT" | tee bench/gosdk-results.md
[ $FAIL = 0 ] || { echo "gosdk.sh: the binding lost records (see above)" >&2; exit 1; }
