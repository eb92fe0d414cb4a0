#!/bin/sh
# One entry after a pause: this tree's library against another commit's, side by side in one
# process (bench/pauseab.c), the way to tell a change of 10% in a call after a pause from the
# machine's drift (bench/quiet.sh's medians move by 1.5x between runs).
#
#   bench/pauseab.sh [BASE] [RUNS] [COUNT]     (make bench-pause-ab BASE=<git ref>)
#
# BASE (a git ref, default HEAD) is built in target/bench/base like bench/ab.sh. For each pause
# of 1, 5 and 20 ms, RUNS runs (default 2) of COUNT rounds (default 300), which library is A
# turned each run. Prints each run's medians and "tree / base" of the call's median, below 1
# when this tree is faster. Needs the local receiver (make receiver) and a C compiler.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE=${1:-HEAD}
RUNS=${2:-2}
COUNT=${3:-300}

[ -z "${MAKELEVEL:-}" ] && make -s lib receiver >&2
mkdir -p target/bench/pauseab
CC=${CC:-cc}
$CC -O2 -std=gnu11 -Wall -Wextra -Iinclude -Ibench bench/pauseab.c -ldl -o target/bench/pauseab/pauseab

. bench/lib.sh
build_base "$BASE"
# Two files, so that dlopen loads two copies.
cp "$BASE_LIB/librarch_logging.so" target/bench/pauseab/base.so
cp "$ROOT/target/release/librarch_logging.so" target/bench/pauseab/tree.so
start_receiver

echo "MACHINE base=$BASE ($(git rev-parse --short "$REV")) tree=$(git describe --always --dirty) cpus=$(nproc) load=$(cut -d' ' -f1 /proc/loadavg)"
for p in 1000 5000 20000; do
  run=1
  while [ $run -le "$RUNS" ]; do
    if [ $((run % 2)) = 1 ]; then A=base; B=tree; else A=tree; B=base; fi
    OUT=$("$ROOT/target/bench/pauseab/pauseab" "$URL" "$KEY" "$WORK/buf-$p-$run" \
      "target/bench/pauseab/$A.so" "target/bench/pauseab/$B.so" "$p" "$COUNT")
    r=$(echo "$OUT" | sed -n 's/.*one_b_over_a=\([0-9.]*\).*/\1/p')
    [ $A = tree ] && r=$(awk -v r="$r" 'BEGIN { printf "%.3f", 1 / r }')
    echo "$OUT A=$A B=$B tree_over_base=$r"
    run=$((run + 1))
  done
done
