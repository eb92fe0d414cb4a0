#!/bin/sh
# Issue 18's first call after a pause, against what any design could do: RUNS alternating runs
# of `rbench pause` (this tree's rarch_log, the typical entry, against a local receiver) and of
# bench/copyfloor.c (a call that only copies the raw fields, bench/copyfloor_lib.c, in a shared
# library of its own). Each line: the first call's p50 after PAUSE_US, the empty call's p50
# after the same pause, and their ratio (the target: at most 4x).
#
#   bench/copyfloor.sh [RUNS] [PAUSE_US] [BURSTS]     (defaults 4, 20000, 40; about 10 s a run)
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-4}; PAUSE=${2:-20000}; BURSTS=${3:-40}
CC=${CC:-cc}
[ -f target/release/librarch_logging.so ] || cargo build --release -q
[ -x examples/receiver/receiver ] || make -s receiver
OUT=target/bench/copyfloor
mkdir -p "$OUT"
$CC -O2 -fPIC -shared -o "$OUT/libcopyfloor.so" bench/copyfloor_lib.c
$CC -O2 -std=gnu11 -Ibench -o "$OUT/copyfloor" bench/copyfloor.c -L"$OUT" -lcopyfloor \
  -Wl,-rpath,"$PWD/$OUT"
$CC -O2 -std=gnu11 -Iinclude -o "$OUT/rbench" bench/rbench.c -Ltarget/release -lrarch_logging \
  -Wl,-rpath,"$PWD/target/release" -lpthread
WORK=$(mktemp -d "${TMPDIR:-/tmp}/copyfloor.XXXXXX")
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
examples/receiver/receiver -key "$KEY" -addr-file "$WORK/addr" -quiet -keep=false 2>"$WORK/log" &
RPID=$!
trap 'kill $RPID 2>/dev/null; rm -rf "$WORK"' EXIT
i=0
while [ ! -s "$WORK/addr" ]; do
  i=$((i + 1)); [ $i -gt 200 ] && { echo "the receiver did not start" >&2; exit 1; }
  sleep 0.05
done
ADDR=$(cat "$WORK/addr")
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }
for r in $(seq "$RUNS"); do
  line=$("$OUT/rbench" pause "http://$ADDR/log" "$KEY" "$(mktemp -d "$WORK/b.XXXXXX")" "$PAUSE" "$BURSTS")
  f=$(echo "$line" | field first_p50); fl=$(echo "$line" | field floor_p50)
  awk -v r="$r" -v f="$f" -v fl="$fl" 'BEGIN { printf "run %s  rarch_log  first %6d ns  floor %5d ns  %.2fx\n", r, f, fl, f / fl }'
  line=$("$OUT/copyfloor" "$PAUSE" "$BURSTS")
  f=$(echo "$line" | field first_p50); fl=$(echo "$line" | field floor_p50)
  awk -v r="$r" -v f="$f" -v fl="$fl" 'BEGIN { printf "run %s  copy only  first %6d ns  floor %5d ns  %.2fx\n", r, f, fl, f / fl }'
done
