#!/bin/sh
# The per-call cost of the Go, Node and Python bindings (issue 18: "the bindings' per-call cost
# falls with the core's"), with their own benchmarks in quick settings, for one or more builds
# of the library, side by side:
#
#   bench/bindings.sh [LIB.so ...]
#   e.g. bench/bindings.sh target/bench/rev-1ca7531/target/release/librarch_logging.so \
#                          target/release/librarch_logging.so
#
# LIB defaults to $RARCH_LOGGING_LIB, else target/release/librarch_logging.so (built with
# `cargo build --release` if missing). Each library is copied first (a rebuild of it while
# this runs does not change what is measured). The bindings' code, and the header the Go
# binding compiles against, are this tree's: what changes between two libraries is the core
# only (a base library must export the functions these bindings call).
# Environment: BINDINGS_LANGS (default "go node python"), BINDINGS_ROUNDS (default 1: rounds
# of the whole set; with several libraries, each round runs every library for one language
# before the next language, so that they see the same machine), RARCH_RECEIVER (default
# examples/receiver/receiver, built with `make receiver` if missing).
#
# How each binding is pointed at the copy, and what is run (about 15 s per library):
#   go      the package's tests compiled once (`go test -c`, CGO_LDFLAGS=-L<copy's dir>), run
#           with LD_LIBRARY_PATH=<copy's dir> (the binary's RUNPATH is the repo's
#           target/release: LD_LIBRARY_PATH comes first; checked with ldd):
#           BenchmarkInfoPaced -benchtime 20000x -count 5 (Info with three fields and a small
#           map context, bursts of 1,000 calls with an untimed Flush between them, so that the
#           queue never fills) and BenchmarkCgoNoop (an empty cgo call) -benchtime 200ms -count 3.
#           call_ns: median of the 5 counts' ns/op, call_best_ns their least; noop_ns likewise.
#   node    RARCH_LOGGING_LIB=<copy> node bindings/node/bench.js with BENCH_ROUNDS=7 (rounds of
#           2,000 calls, flushed between rounds, variants interleaved): logger.info with three
#           fields and a small context (rarch_log_n); noop: an empty koffi call
#           (rarch_get_level). call_ns: the median round's ns/call, call_best_ns the best.
#   python  RARCH_LOGGING_LIB=<copy> python3 bindings/python/bench.py --bursts 20 -n 0
#           --no-wrk: logger.info with three fields and a small context, bursts of 1,000
#           calls flushed between bursts; noop: an empty ctypes call (rarch_get_level through
#           PyDLL, as info calls rarch_log). call_ns: the median burst, call_best_ns the least.
# Each binding's benchmark starts its own receiver (RARCH_RECEIVER); entries are delivered.
# Output: per binding and library, one line
#   RESULT bench=binding lang=go|node|python lib=<path> call_ns=... noop_ns=...
#          call_best_ns=... noop_best_ns=... round=...
# on stdout; each benchmark's own output on stderr. The machine is shared: the medians move
# by 2x or more from run to run under load; compare libraries within one run.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LANGS=${BINDINGS_LANGS:-go node python}
ROUNDS=${BINDINGS_ROUNDS:-1}
PY=${PYTHON:-python3}
say() { printf '== %s\n' "$*" >&2; }
for l in $LANGS; do
  case $l in go|node|python) ;; *) echo "BINDINGS_LANGS: go, node, python; not $l" >&2; exit 2 ;; esac
done

if [ $# -eq 0 ]; then
  if [ -n "${RARCH_LOGGING_LIB:-}" ]; then
    set -- "$RARCH_LOGGING_LIB"
  else
    if [ ! -f target/release/librarch_logging.so ]; then
      say "building the library (cargo build --release)"
      cargo build --release -q >&2
    fi
    set -- target/release/librarch_logging.so
  fi
fi
for lib in "$@"; do
  [ -f "$lib" ] || { echo "bindings.sh: $lib: no such file" >&2; exit 1; }
done

RARCH_RECEIVER=${RARCH_RECEIVER:-$ROOT/examples/receiver/receiver}
if [ ! -x "$RARCH_RECEIVER" ]; then
  say "building the receiver (make receiver)"
  make -s receiver >&2
fi
export RARCH_RECEIVER

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rarch-bindings.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# The copies: <dir>/librarch_logging.so and the soname link the Go binary looks for.
n=0
for lib in "$@"; do
  n=$((n + 1))
  mkdir -p "$WORK/lib$n"
  cp "$lib" "$WORK/lib$n/librarch_logging.so"
  ln -s librarch_logging.so "$WORK/lib$n/librarch_logging.so.0"
  echo "$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")" >"$WORK/lib$n.path"
done
NLIBS=$n

# --- tools -------------------------------------------------------------------------------------
for l in $LANGS; do
  case $l in
    go)
      command -v go >/dev/null 2>&1 || { echo "bindings.sh: go is not installed" >&2; exit 1; }
      say "compiling the Go binding's benchmarks (go test -c)"
      (cd bindings/go && CGO_ENABLED=1 CGO_LDFLAGS="-L$WORK/lib1 ${CGO_LDFLAGS:--g}" \
        go test -c -o "$WORK/rarchlog.test" . >&2)
      ;;
    node)
      command -v node >/dev/null 2>&1 || { echo "bindings.sh: node is not installed" >&2; exit 1; }
      if [ ! -d bindings/node/node_modules/koffi ]; then
        say "installing the Node binding's dependencies (npm ci)"
        (cd bindings/node && npm ci --no-audit --no-fund >&2)
      fi
      ;;
    python)
      command -v "$PY" >/dev/null 2>&1 || { echo "bindings.sh: $PY is not installed" >&2; exit 1; }
      ;;
  esac
done

fail() { # WHAT OUTPUT-FILE: the benchmark's output, then stop
  echo "bindings.sh: $1" >&2
  [ -f "$2" ] && sed 's/^/   | /' "$2" >&2
  exit 1
}
# Each benchmark within a bound: SIGQUIT first (a Go program prints its goroutines' stacks),
# then SIGKILL 5 s later.
bounded() { timeout -s QUIT -k 5 "$@"; }

median() { sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "NA"}'; }
least() { sort -n | head -n1; }
field() { # LINE KEY: the value of KEY=... in LINE
  printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

run_go() { # N: the Go figures for library N
  d=$WORK/lib$1
  got=$(LD_LIBRARY_PATH=$d ldd "$WORK/rarchlog.test" | sed -n 's/.*librarch_logging.so.0 => \([^ ]*\).*/\1/p')
  [ "$got" = "$d/librarch_logging.so.0" ] || { echo "bindings.sh: the Go test binary loads $got, not $d" >&2; exit 1; }
  out=$WORK/go.$1.out
  (cd "$WORK" && LD_LIBRARY_PATH=$d bounded 90 ./rarchlog.test -test.run '^$' \
    -test.bench 'InfoPaced$' -test.benchtime 20000x -test.count 5 -test.benchmem) >"$out" 2>&1 ||
    fail "go: BenchmarkInfoPaced failed or timed out (90 s)" "$out"
  (cd "$WORK" && LD_LIBRARY_PATH=$d bounded 60 ./rarchlog.test -test.run '^$' \
    -test.bench 'CgoNoop$' -test.benchtime 200ms -test.count 3) >>"$out" 2>&1 ||
    fail "go: BenchmarkCgoNoop failed or timed out (60 s)" "$out"
  sed 's/^/   /' "$out" >&2
  info=$(awk '$1 ~ /^BenchmarkInfoPaced/ {print $3}' "$out")
  noop=$(awk '$1 ~ /^BenchmarkCgoNoop/ {print $3}' "$out")
  [ -n "$info" ] && [ -n "$noop" ] || fail "go: no benchmark figures" "$out"
  printf 'call_ns=%s noop_ns=%s call_best_ns=%s noop_best_ns=%s' \
    "$(printf '%s\n' $info | median | xargs printf '%.0f')" \
    "$(printf '%s\n' $noop | median | xargs printf '%.1f')" \
    "$(printf '%s\n' $info | least | xargs printf '%.0f')" \
    "$(printf '%s\n' $noop | least | xargs printf '%.1f')"
}

run_node() {
  d=$WORK/lib$1
  out=$WORK/node.$1.out
  (cd bindings/node && RARCH_LOGGING_LIB=$d/librarch_logging.so BENCH_ROUNDS=7 BENCH_N=2000 \
    bounded 90 node bench.js) >"$out" 2>&1 || fail "node: bench.js failed or timed out (90 s)" "$out"
  sed 's/^/   /' "$out" >&2
  grep -q "($d/librarch_logging.so)" "$out" || fail "node did not load $d" "$out"
  b=$(grep '^BENCH lang=node ' "$out") || fail "node: no BENCH line from bench.js" "$out"
  printf 'call_ns=%s noop_ns=%s call_best_ns=%s noop_best_ns=%s rarch_log_ns=%s filtered_ns=%s' \
    "$(field "$b" info_ns_median)" "$(field "$b" noop_ns_median)" "$(field "$b" info_ns_best)" \
    "$(field "$b" noop_ns_best)" "$(field "$b" rarch_log_ns_median)" "$(field "$b" filtered_ns_median)"
}

run_python() {
  d=$WORK/lib$1
  out=$WORK/python.$1.out
  RARCH_LOGGING_LIB=$d/librarch_logging.so bounded 90 "$PY" bindings/python/bench.py \
    --receiver "$RARCH_RECEIVER" --bursts 20 -n 0 --no-wrk >"$out" 2>&1 ||
    fail "python: bench.py failed or timed out (90 s)" "$out"
  sed 's/^/   /' "$out" >&2
  grep -q " at $d/librarch_logging.so;" "$out" || fail "python did not load $d" "$out"
  b=$(grep '^BENCH lang=python ' "$out") || fail "python: no BENCH line from bench.py" "$out"
  printf 'call_ns=%s noop_ns=%s call_best_ns=%s noop_best_ns=%s' \
    "$(field "$b" info_ns_median)" "$(field "$b" noop_ns_median)" "$(field "$b" info_ns_min)" \
    "$(field "$b" noop_ns_min)"
}

say "bindings' per-call cost: $LANGS; $NLIBS librar$( [ $NLIBS = 1 ] && echo y || echo ies); load $(cut -d' ' -f1-3 /proc/loadavg)"
r=0
while [ $r -lt "$ROUNDS" ]; do
  r=$((r + 1))
  for l in $LANGS; do
    i=0
    while [ $i -lt $NLIBS ]; do
      i=$((i + 1))
      p=$(cat "$WORK/lib$i.path")
      say "$l, $p (round $r)"
      figs=$(run_$l $i)
      echo "RESULT bench=binding lang=$l lib=$p $figs round=$r"
    done
  done
done
