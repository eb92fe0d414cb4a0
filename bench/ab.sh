#!/bin/sh
# This tree's library against another commit's, side by side in one process (bench/abbench.c):
# the one way found to tell a change of a few percent in `rarch_log`'s cost from the machine's
# own drift, which is 10-20% between runs a minute apart.
#
#   bench/ab.sh [BASE] [RUNS] [BURSTS]      (make bench-ab BASE=<git ref>)
#
# BASE (a git ref, default HEAD) is built in target/bench/base (a git worktree). RUNS runs
# (default 6) alternate which library goes first; each run logs BURSTS bursts of 100 typical
# entries per library (default 100) to a local receiver. Prints each run's ratio and their
# median: "this tree / BASE" of the p50 of `rarch_log`, below 1 when this tree is faster.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE=${1:-HEAD}
RUNS=${2:-6}
BURSTS=${3:-100}

[ -z "${MAKELEVEL:-}" ] && make -s lib receiver >&2
mkdir -p target/bench/ab
CC=${CC:-cc}
$CC -O2 -std=gnu11 -Wall -Wextra -Iinclude bench/abbench.c -ldl -o target/bench/abbench

. bench/lib.sh
build_base "$BASE"
# Two files, so that dlopen loads two copies.
cp "$BASE_LIB/librarch_logging.so" target/bench/ab/base.so
cp "$ROOT/target/release/librarch_logging.so" target/bench/ab/tree.so
start_receiver

RATIOS=""
run=1
while [ $run -le "$RUNS" ]; do
  if [ $((run % 2)) = 1 ]; then A=base; B=tree; else A=tree; B=base; fi
  OUT=$("$ROOT/target/bench/abbench" "$URL" "$KEY" "$WORK/buf$run" \
    "target/bench/ab/$A.so" "target/bench/ab/$B.so" "$BURSTS")
  r=$(echo "$OUT" | sed -n 's/.*p50_b_over_a=\([0-9.]*\).*/\1/p')
  # Always "tree / base".
  [ $A = tree ] && r=$(awk -v r="$r" 'BEGIN { printf "%.3f", 1 / r }')
  p50s=$(echo "$OUT" | sed -n 's/.*lib=\([AB]\).*log_p50=\([0-9]*\).*/\1=\2/p' | tr '\n' ' ')
  echo "run $run: $A first, p50 ns: $p50s-> tree/base $r"
  RATIOS="$RATIOS $r"
  run=$((run + 1))
done
MEDIAN=$(echo $RATIOS | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "RESULT bench=ab base=$BASE ($(git rev-parse --short "$REV")) tree=$(git describe --always --dirty) runs=$RUNS p50_tree_over_base_median=$MEDIAN (ratios:$RATIOS)"
