#!/bin/sh
# The library in a host that logs now and then (bench/quiet.c), this tree beside another
# commit's build, run by run in turns:
#
#   bench/quiet.sh [BASE] [RUNS]          (make bench-quiet BASE=<git ref>)
#
# idle:   50,000 entries, flush, 2 s of nothing, then the library's threads and their wake-ups
#         a second over 5 s (targets: at most 4 threads, at most 5 wake-ups a second);
# single: one entry after each pause of 1, 5 and 20 ms, its median against the bound
#         max(4 x the empty call's median after the same pause, 2 x the warm median).
# BASE (default HEAD) is built in target/bench/base like bench/ab.sh; RUNS (default 3) runs of
# each, base and tree alternating. Needs the local receiver (make receiver) and a C compiler.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE=${1:-HEAD}
RUNS=${2:-3}

[ -z "${MAKELEVEL:-}" ] && make -s lib receiver >&2
. bench/lib.sh
build_base "$BASE"
mkdir -p target/bench/quiet
CC=${CC:-cc}
for v in base tree; do
  if [ $v = base ]; then D=$BASE_LIB; else D=$ROOT/target/release; fi
  mkdir -p "target/bench/quiet/$v"
  cp "$D/librarch_logging.so" "target/bench/quiet/$v/"
  ln -sf librarch_logging.so "target/bench/quiet/$v/librarch_logging.so.0"
  $CC -O2 -std=gnu11 -Wall -Wextra -Iinclude -Ibench bench/quiet.c \
    -L"target/bench/quiet/$v" -lrarch_logging -Wl,-rpath,"$ROOT/target/bench/quiet/$v" \
    -o "target/bench/quiet/$v/quiet"
done

start_receiver

echo "MACHINE base=$BASE ($(git rev-parse --short "$REV")) tree=$(git describe --always --dirty) cpus=$(nproc) load=$(cut -d' ' -f1 /proc/loadavg)"
run=1
while [ "$run" -le "$RUNS" ]; do
  if [ $((run % 2)) = 1 ]; then ORDER="base tree"; else ORDER="tree base"; fi
  for v in $ORDER; do
    Q=target/bench/quiet/$v/quiet
    out=$($Q idle "$URL" "$KEY" "$WORK/buf-$v-$run" 50000 2000 5000)
    echo "$v $out"
    for p in 1000 5000 20000; do
      out=$($Q single "$URL" "$KEY" "$WORK/buf-$v-$run" $p 300)
      echo "$v $out"
    done
  done
  run=$((run + 1))
done
