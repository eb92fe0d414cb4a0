#!/bin/sh
# The rarch-logging benchmark suite (issues 8, 15, 16 and 21). `make bench` runs it;
# `bench/run.sh --quick` (or BENCH_QUICK=1 make bench) is a ~5 minute version with smaller
# counts (up to 6 more when the degraded rows time out). Loopback only, bounded counts and times.
#
# Everything is reported as ratios against baselines measured side by side in this run (wrk,
# a Python-style sender, an empty library call), because the machine is shared and noisy.
# Results: a table on stdout, bench/results.md (table + raw RESULT lines), bench/results.txt.
#
#   bench/run.sh [--quick] [--only SECTIONS] [--rev REF] [--base REF|none]
#   --only caller,throughput,memory,blocking,degraded,latency,cpu,otlp,gosdk
#               run only these sections (BENCH_ONLY=...)
#   --rev REF   measure the library of commit REF (built from `git archive` in target/bench/rev-*)
#               instead of the working tree's (BENCH_REV=...); rbench uses this tree's header
#   --base REF  the baseline library of section 1's issue 18 rows (BENCH_BASE=..., default
#               ffcb536, the tree before issue 18's work), built as --rev builds; `none` skips it
# Section 1 (caller cost, issues 8 and 18): the paced rows, then issue 18's rows for the base
# library and this one in the order base, tree, tree, base (a second rbench, linked against the
# base, from this tree's header): back to back 1 and 4 threads, durable back to back, the first
# call after a 20 ms pause and its floor, and `rbench burst`: BENCH_BURST_COUNT (100000, quick
# too) entries in a tight loop with the default options, then rarch_flush(BENCH_BURST_TIMEOUT_S,
# 120); then the other pause lengths for this library.
# Section 5 (degraded server, issue 15): BENCH_DEGRADED_COUNT entries per row (200000, quick
# 20000), rarch_flush timeout BENCH_DEGRADED_TIMEOUT_S (300, quick 60); a row is killed 60 s later.
# Section 6 (distant server, issue 16): BENCH_LAT_COUNT entries per default row at 10/50/200 ms
# (20000, quick 5000) and BENCH_LAT0_COUNT (20000) per row at 0 ms; the fixed-2 rows at >= 10 ms
# log BENCH_LAT_FIXED_COUNT (2000, quick 1000) within BENCH_LAT_FIXED_TIMEOUT_S (30, quick 15).
# Section 7 (CPU per delivered entry, issue 21): BENCH_CPU_S seconds per paced row (5, quick 2),
# BENCH_CPU_ROUNDS rounds (3); strace (installed if missing) counts the system calls;
# BENCH_CPU_OPTS="k=v,..." runs the library rows with other options (default: none).
# Section 8 (OTLP through a Collector, issues 17 and 33): BENCH_OTLP_COUNT entries per row (200000,
# quick too), BENCH_OTLP_ROUNDS rounds (3, quick 1) of rarch sink, sink=otlp (http/protobuf, the
# default), sink=otlp,otlp_protocol=http/json and (BENCH_OTLP_GZIP=0 leaves it out)
# sink=otlp,compression=gzip; needs target/otelcol/otelcol-rarch (make collector).
# Section 9 (the Go binding beside the OpenTelemetry Go SDK, issue 33): bench/gosdk.sh (200,000
# records a row, 3 rounds; quick 20,000, 1 round), its table on stderr, its RESULT lines here.
# A row that does not deliver every entry exactly once fails the run (exit 1, after the report).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=${BENCH_QUICK:-0}   # BENCH_QUICK=1 make bench == bench/run.sh --quick
ONLY=${BENCH_ONLY:-}
REV=${BENCH_REV:-}
BASE=${BENCH_BASE:-ffcb536}
SECTIONS="caller throughput memory blocking degraded latency cpu otlp gosdk"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --only) [ $# -ge 2 ] || { echo "--only needs a list of sections" >&2; exit 2; }; ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    --rev) [ $# -ge 2 ] || { echo "--rev needs a git ref" >&2; exit 2; }; REV=$2; shift ;;
    --rev=*) REV=${1#--rev=} ;;
    --base) [ $# -ge 2 ] || { echo "--base needs a git ref or none" >&2; exit 2; }; BASE=$2; shift ;;
    --base=*) BASE=${1#--base=} ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (use --quick, --only SECTIONS, --rev REF, --base REF)" >&2; exit 2 ;;
  esac
  shift
done
ONLY=$(printf '%s' "$ONLY" | tr ', ' '  ')
for s in $ONLY; do
  case " $SECTIONS " in *" $s "*) ;; *) echo "unknown section: $s (sections: $SECTIONS)" >&2; exit 2 ;; esac
done
want() { [ -z "$ONLY" ] && return 0; case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

# Per-thread call counts are paced at CALLER_RATE calls/s, so CALLER_N/CALLER_RATE seconds a run.
if [ $QUICK = 1 ]; then
  CALLER_N=2000; CALLER_RATE=2000
  TP_N=20000; TP_MODES="2:spill 2:block 4:spill"; WRK_S=2; PY_N=300; PY_S=4
  MEM_N=50000; BLK_N=500
  DEG_N=20000; DEG_T=60
  LAT_N=5000; LAT_T=120; LAT_FN=1000; LAT_FT=15
  CPU_S=2; CPU_FULL_N=20000
  OTLP_ROUNDS=1
else
  CALLER_N=5000; CALLER_RATE=2000
  TP_N=200000; TP_MODES="2:spill 2:block 4:spill"; WRK_S=3; PY_N=1500; PY_S=8
  MEM_N=1000000; BLK_N=2000
  DEG_N=200000; DEG_T=300
  LAT_N=20000; LAT_T=300; LAT_FN=2000; LAT_FT=30
  CPU_S=5; CPU_FULL_N=100000
  OTLP_ROUNDS=3
fi
DEG_N=${BENCH_DEGRADED_COUNT:-$DEG_N}
DEG_T=${BENCH_DEGRADED_TIMEOUT_S:-$DEG_T}
LAT_N=${BENCH_LAT_COUNT:-$LAT_N}
LAT0_N=${BENCH_LAT0_COUNT:-20000}
LAT_FN=${BENCH_LAT_FIXED_COUNT:-$LAT_FN}
LAT_FT=${BENCH_LAT_FIXED_TIMEOUT_S:-$LAT_FT}
CPU_S=${BENCH_CPU_S:-$CPU_S}
CPU_ROUNDS=${BENCH_CPU_ROUNDS:-3}
CPU_OPTS=${BENCH_CPU_OPTS:-}
OTLP_N=${BENCH_OTLP_COUNT:-200000}
OTLP_ROUNDS=${BENCH_OTLP_ROUNDS:-$OTLP_ROUNDS}
OTLP_GZIP=${BENCH_OTLP_GZIP:-1}
TP_MODES=${BENCH_TP_MODES:-$TP_MODES}   # e.g. BENCH_TP_MODES="2:spill 2:block 4:spill 4:block"

say() { printf '== %s\n' "$*" >&2; }
. bench/otelcol.sh   # start_collector

# --- tools ---------------------------------------------------------------------------------
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
PY=${PYTHON:-python3}
mkdir -p "$ROOT/target/bench"
if want throughput || want cpu; then
  if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
    else
      sudo apt-get update -qq >/dev/null && sudo apt-get install -y -qq wrk >/dev/null
    fi
  fi
  command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 1; }
fi
if want throughput; then
  # The Python-style baseline runs with the old client's own dependencies (requests, PyJWT), in
  # a venv of its own; without network it falls back to the standard library (and says so).
  BPY=$ROOT/target/bench/pyenv/bin/python
  if [ ! -x "$BPY" ] || ! "$BPY" -c 'import requests, jwt' 2>/dev/null; then
    say "making target/bench/pyenv (requests, PyJWT) for the Python-style baseline"
    $PY -m venv "$ROOT/target/bench/pyenv" >&2 &&
      "$ROOT/target/bench/pyenv/bin/pip" install -q requests==2.34.2 PyJWT==2.15.1 >&2 ||
      say "could not install requests/PyJWT: the baseline falls back to the standard library"
  fi
  [ -x "$BPY" ] || BPY=$PY
fi
if want cpu && ! command -v strace >/dev/null 2>&1; then
  # System calls per entry (section 7) need strace; without it the section runs without them.
  say "installing strace (section 7's system calls per entry; skipped if this fails)"
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && apt-get install -y -qq strace; } >/dev/null 2>&1 || true
  else
    { sudo -n apt-get update -qq && sudo -n apt-get install -y -qq strace; } >/dev/null 2>&1 || true
  fi
fi
if want otlp; then
  # The Collector (tests/otelcol/build.sh: reused when built, else about 3 minutes with Go).
  if [ ! -x "$ROOT/target/otelcol/otelcol-rarch" ] || [ -z "${MAKELEVEL:-}" ]; then
    say "building the Collector (make collector)"
    make -s collector >&2
  fi
fi
if want caller || want degraded || want latency || want otlp; then
  command -v timeout >/dev/null || { echo "timeout (coreutils) is required" >&2; exit 1; }
fi

rev_lib() { # REF: sets SHA and REV_LIB, the directory of commit REF's library
  # Another commit's library, built apart (its own copy of the sources and target directory),
  # so that edits in the working tree, and builds of it, do not change what is measured.
  SHA=$(git rev-parse --verify "$1^{commit}")
  RD=$ROOT/target/bench/rev-$(git rev-parse --short "$SHA")
  if [ ! -f "$RD/target/release/librarch_logging.so" ]; then
    say "building the library of $1 ($SHA) in $RD"
    rm -rf "$RD/src"; mkdir -p "$RD/src"
    git archive "$SHA" | tar -x -C "$RD/src"
    (cd "$RD/src" && CARGO_TARGET_DIR=$RD/target cargo build --release -q >&2)
  fi
  REV_LIB=$RD/target/release
  SONAME=$(sed -n 's/^version = "\([0-9]*\)\..*/\1/p' "$RD/src/Cargo.toml" | head -n1)
  ln -sf librarch_logging.so "$REV_LIB/librarch_logging.so.$SONAME"
}
LIB=$ROOT/target/release
if [ -n "$REV" ]; then
  rev_lib "$REV"; LIB=$REV_LIB; LIB_SHA=$SHA
  if [ -z "${MAKELEVEL:-}" ]; then say "building (make receiver)"; make -s receiver >&2; fi
elif [ -z "${MAKELEVEL:-}" ]; then
  say "building (make lib receiver)"
  make -s lib receiver >&2
fi
# Section 1's baseline library (issue 18), unless --base none or no section 1.
BASE_LIB=
if want caller && [ "$BASE" != none ]; then
  rev_lib "$BASE"; BASE_LIB=$REV_LIB; BASE_SHA=$SHA
fi
mkdir -p target/bench
CC=${CC:-cc}
link_rbench() { # LIBDIR OUT: rbench from this tree's header, linked against LIBDIR's library
  $CC -O2 -std=gnu11 -Wall -Wextra -Iinclude bench/rbench.c -L"$1" -lrarch_logging \
    -Wl,-rpath,"$1" -lpthread -o "$2"
  # The run path loses to LD_LIBRARY_PATH: check which library the driver really loads.
  got=$(ldd "$2" | sed -n 's/.*librarch_logging[^ ]* => \([^ ]*\) .*/\1/p')
  case $got in
    "$1"/*) ;;
    *) echo "$2 loads librarch_logging from ${got:-nowhere}, not $1 (LD_LIBRARY_PATH?)" >&2; exit 1 ;;
  esac
}
link_rbench "$LIB" "target/bench/rbench.$$"
# This run's own driver (another run may link target/bench/rbench to another library meanwhile);
# target/bench/rbench is the latest, replaced by a rename.
RB=$ROOT/target/bench/rbench.$$
cp "$RB" "target/bench/rbench.tmp.$$" && mv -f "target/bench/rbench.tmp.$$" target/bench/rbench
# The base's driver: the same source and header, its own run path.
RBB=
if [ -n "$BASE_LIB" ]; then
  RBB=$ROOT/target/bench/rbench-base.$$
  link_rbench "$BASE_LIB" "$RBB"
fi

# --- receivers -----------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rarch-bench.XXXXXX")
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  rm -f "$RB" ${RBB:+"$RBB"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

start_receiver() { # name [receiver flags...] -> sets $ADDR and $RPID
  n=$1; shift
  rm -f "$WORK/$n.addr"
  "$ROOT/examples/receiver/receiver" -key "$KEY" -addr-file "$WORK/$n.addr" -quiet -keep=false \
    "$@" 2>"$WORK/$n.log" &
  RPID=$!
  PIDS="$PIDS $RPID"
  set -- "$n"
  i=0
  while [ ! -s "$WORK/$1.addr" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "receiver $1 did not start" >&2; exit 1; }
    sleep 0.05
  done
  ADDR=$(cat "$WORK/$1.addr")
}
start_receiver healthy; HEALTHY=$ADDR
if want caller; then
  start_receiver slow; SLOW=$ADDR
  curl -sf -X POST -d '{"mode":"delay","delay_ms":2000,"rate":1}' "http://$SLOW/admin/fault" >/dev/null
fi
# "down": a loopback port where nothing listens (connection refused).
DOWN_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DOWN=127.0.0.1:$DOWN_PORT

reset() { curl -sf -X POST "http://$HEALTHY/admin/reset" >/dev/null; }
accepted() { # the receiver's view: accepted, distinct request ids, duplicates
  curl -sf "http://$HEALTHY/stats" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("receiver_accepted=%d receiver_distinct=%d receiver_duplicates=%d" % (d["accepted"], d["distinct"], d["duplicates"]))'
}
OUT=$WORK/results.txt
: >"$OUT"
# A fresh buffer_dir per run (mktemp: $(bufdir) runs in a subshell, so no counter).
bufdir() { mktemp -d "$WORK/buf.XXXXXX"; }
emit() { tee -a "$OUT" | sed 's/^/   /' >&2; }

# wrk posts the typical entry (bench/wrk_post.lua) with a JWT signed here, with the same key.
BODY=$WORK/body.json
JWT=
wrk_setup() { [ -n "$JWT" ] || JWT=$($PY bench/pyclient_baseline.py wrk-setup "$KEY" "$BODY"); }
run_wrk() { # connections [host:port, default the healthy receiver]: one RESULT bench=wrk line
  t=$1; [ "$t" -gt 2 ] && t=2
  BENCH_BODY_FILE=$BODY BENCH_JWT=$JWT wrk -t"$t" -c"$1" -d"${WRK_S}s" -s bench/wrk_post.lua \
    "http://${2:-$HEALTHY}/log" | grep '^RESULT' | sed "s/\$/ connections=$1/"
}

# --- machine -------------------------------------------------------------------------------
{
  echo "MACHINE nproc=$(nproc)"
  echo "MACHINE cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "MACHINE kernel=$(uname -srm)"
  echo "MACHINE load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "MACHINE mode=$([ $QUICK = 1 ] && echo quick || echo full)"
  echo "MACHINE version=$(git describe --always --dirty 2>/dev/null || echo unknown)"
  if [ -n "$REV" ]; then echo "MACHINE library=$(git rev-parse --short "$LIB_SHA")"; fi
  if [ -n "$BASE_LIB" ]; then echo "MACHINE base=$(git rev-parse --short "$BASE_SHA")"; fi
  echo "MACHINE sections=$(echo ${ONLY:-$SECTIONS} | tr ' ' ',')"
  if [ -n "$CPU_OPTS" ] && want cpu; then echo "MACHINE cpu_opts=$CPU_OPTS"; fi
} >>"$OUT"
T0=$(date +%s)

# --- 1. caller cost --------------------------------------------------------------------------
if want caller; then
  say "1. caller cost of rarch_log (paced: bursts of 100 calls, $CALLER_RATE calls/s per thread)"
  for durable in 0 1; do
    N=$CALLER_N
    for scen in healthy down slow; do
      case $scen in healthy) A=$HEALTHY ;; down) A=$DOWN ;; slow) A=$SLOW ;; esac
      for th in 1 4; do
        "$RB" caller "http://$A/log" "$KEY" "$(bufdir)" $th $N $CALLER_RATE $durable $scen | emit
      done
    done
  done
  # Issue 18's rows, for the base library and this one, alternating (base, tree, tree, base;
  # each line gets lib= and round=). (1, 2) The same calls back to back (no pause; healthy
  # server): the cost with warm caches. Four threads log 2/5 as many each, so that all of it
  # fits in the queue. (3) The same in durable mode, 1 thread. (4) The first call of a burst
  # after a 20 ms pause, and its floor (rbench pause). (5) rbench burst: BURST_N entries in a
  # tight loop with the default options, then rarch_flush; the receiver's counts after it.
  PAUSE_BURSTS=$([ $QUICK = 1 ] && echo 40 || echo 100)
  BURST_N=${BENCH_BURST_COUNT:-100000}
  BURST_T=${BENCH_BURST_TIMEOUT_S:-120}
  say "   issue 18 rows: $([ -n "$RBB" ] && echo "base $(git rev-parse --short "$BASE_SHA"), tree, tree, base" || echo "tree, tree (--base none)")"
  rb=0; rt=0
  for lib in $([ -n "$RBB" ] && echo base tree tree base || echo tree tree); do
    if [ $lib = base ]; then R=$RBB; rb=$((rb + 1)); n=$rb; else R=$RB; rt=$((rt + 1)); n=$rt; fi
    tag="lib=$lib round=$n"
    "$R" caller "http://$HEALTHY/log" "$KEY" "$(bufdir)" 1 $CALLER_N 0 0 healthy-b2b | sed "s/\$/ $tag/" | emit
    "$R" caller "http://$HEALTHY/log" "$KEY" "$(bufdir)" 4 $((CALLER_N * 2 / 5)) 0 0 healthy-b2b | sed "s/\$/ $tag/" | emit
    "$R" caller "http://$HEALTHY/log" "$KEY" "$(bufdir)" 1 $CALLER_N 0 1 healthy-b2b | sed "s/\$/ $tag/" | emit
    "$R" pause "http://$HEALTHY/log" "$KEY" "$(bufdir)" 20000 $PAUSE_BURSTS | sed "s/\$/ $tag/" | emit
    reset
    B=$(bufdir)
    s0=$(date +%s)
    rc=0
    line=$(timeout -k 10 $((BURST_T + 60)) "$R" burst "http://$HEALTHY/log" "$KEY" "$B" $BURST_N $BURST_T) || rc=$?
    case $line in
      "RESULT bench=burst "*) ;;
      *) line="RESULT bench=burst count=$BURST_N flush=-1 flush_timeout_s=$BURST_T total_ms=$(( ($(date +%s) - s0) * 1000 ))" ;;
    esac
    if [ $rc != 0 ]; then line="$line killed=1 exit=$rc"; fi
    echo "$line $tag $(accepted)" | emit
    rm -rf "$B"
  done
  # The first call of a burst against the length of the pause before it (healthy server); the
  # 20 ms rows are the rounds above.
  for pause in 200 2000 100000; do
    "$RB" pause "http://$HEALTHY/log" "$KEY" "$(bufdir)" $pause $PAUSE_BURSTS | sed 's/$/ lib=tree/' | emit
  done
  reset
fi

# --- 2. delivery throughput --------------------------------------------------------------------
if want throughput; then
  say "2. delivery throughput ($TP_N entries) vs wrk (${WRK_S}s) and a Python-style sender"
  wrk_setup
  # wrk runs before and after the library's runs at each connection count; the mean is the limit.
  for c in 2 4; do
    run_wrk $c | emit
    for m in $TP_MODES; do
      [ "${m%%:*}" = $c ] || continue
      reset
      line=$("$RB" throughput "http://$HEALTHY/log" "$KEY" "$(bufdir)" $c $TP_N "${m#*:}")
      echo "$line $(accepted)" | emit
    done
    run_wrk $c | emit
  done
  reset
  "$BPY" bench/pyclient_baseline.py send "http://$HEALTHY/log" "$KEY" $PY_N $PY_S | emit
fi

# --- 3. memory while down, then replay -----------------------------------------------------------
if want memory; then
  say "3. memory: $MEM_N entries logged while the server is down, then replay"
  MEMBUF=$(bufdir)
  "$RB" memory "http://$DOWN/log" "$KEY" "$MEMBUF" $MEM_N | emit
  echo "RESULT bench=bufferfiles bytes=$(du -sb "$MEMBUF" | cut -f1) lines=$(cat "$MEMBUF"/bench/*.jsonl 2>/dev/null | wc -l)" | emit
  reset
  line=$("$RB" replay "http://$HEALTHY/log" "$KEY" "$MEMBUF")
  echo "$line $(accepted)" | emit
  rm -rf "$MEMBUF"
fi

# --- 4. blocking mode ------------------------------------------------------------------------
if want blocking; then
  say "4. blocking mode"
  for th in 1 4; do
    reset
    "$RB" blocking "http://$HEALTHY/log" "$KEY" "$(bufdir)" $th $BLK_N | emit
  done
fi

# --- 5. degraded server (issue 15) ---------------------------------------------------------------
# The default options (connections=2, on_full=spill), DEG_N entries in a tight loop, then
# rarch_flush(DEG_T s), against a receiver of its own that answers a share of the requests with
# 503 or resets the connection, at random. Healthy first and last: the reference is their mean.
# Each row: a fresh buffer_dir, the receiver's counters cleared, and a bound (the flush
# timeout, then `timeout` kills the row 60 s later).
if want degraded; then
  say "5. degraded server: $DEG_N entries per row, default options, rarch_flush(${DEG_T} s)"
  start_receiver degraded; DEG=$ADDR
  fault() { curl -sf -X POST -d "$1" "http://$DEG/admin/fault" >/dev/null; }
  deg_stats() {
    curl -sf "http://$DEG/stats" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("receiver_%s=%d" % (k, d[k]) for k in ("requests", "accepted", "distinct", "duplicates", "faults")))'
  }
  jsonl_lines() { # DIR [NAME]: lines left in the buffer files (not dead letters or corrupt ones), or in NAME
    if [ $# -gt 1 ]; then
      cat "$1"/*/"$2" 2>/dev/null | wc -l | tr -d ' '
    else
      find "$1" -name '*.jsonl' ! -name buffer.rejected.jsonl ! -name buffer.corrupt.jsonl \
        -exec cat {} + 2>/dev/null | wc -l | tr -d ' '
    fi
  }
  for row in healthy:none:0 503-10:status:0.1 503-30:status:0.3 503-50:status:0.5 \
             reset-20:reset:0.2 healthy-after:none:0; do
    scen=${row%%:*}; r=${row#*:}; mode=${r%%:*}; rate=${r#*:}
    say "   $scen"
    fault '{"mode":"none"}'
    curl -sf -X POST "http://$DEG/admin/reset" >/dev/null
    case $mode in
      status) fault "{\"mode\":\"status\",\"status\":503,\"rate\":$rate}" ;;
      reset) fault "{\"mode\":\"reset\",\"rate\":$rate}" ;;
    esac
    B=$(bufdir)
    s0=$(date +%s)
    rc=0
    line=$(timeout -k 10 $((DEG_T + 60)) "$RB" degraded "http://$DEG/log" "$KEY" "$B" $DEG_N $DEG_T) || rc=$?
    fault '{"mode":"none"}'
    case $line in
      "RESULT bench=degraded "*) ;;
      *) line="RESULT bench=degraded count=$DEG_N flush=-1 flush_timeout_s=$DEG_T total_ms=$(( ($(date +%s) - s0) * 1000 ))" ;;
    esac
    if [ $rc != 0 ]; then line="$line killed=1 exit=$rc"; fi
    echo "$line scenario=$scen fault=$mode fault_rate=$rate $(deg_stats) disk_lines=$(jsonl_lines "$B") dead_letters=$(jsonl_lines "$B" buffer.rejected.jsonl)" | emit
    rm -rf "$B"
  done
fi

# --- 6. distant server (issue 16) --------------------------------------------------------------
# A new user's program (rbench latency: COUNT entries in a tight loop, then rarch_flush) against
# a receiver of its own that delays every answer by D ms (POST /admin/fault {"latency_ms":D}:
# a timer, no CPU), with the default options (adaptive concurrency up to connections=64) and
# with the old default, concurrency=fixed,connections=2, side by side in this run. The fixed
# rows at D >= 10 ms would take minutes (2 / D per second: 200, 40, 10/s), so they log
# LAT_FN entries with a flush timeout of LAT_FT s, and their rate is what was delivered in that
# time. At 0 ms both log LAT0_N (20,000 in quick mode too: a second or two a row), three times,
# alternately, between two wrk runs (2 connections).
if want latency; then
  say "6. distant server: 0 ms ($LAT0_N entries a row, 3 rounds), 10/50/200 ms ($LAT_N; fixed-2 rows $LAT_FN within ${LAT_FT} s)"
  start_receiver latency; LATR=$ADDR
  lat_fault() { curl -sf -X POST -d "$1" "http://$LATR/admin/fault" >/dev/null; }
  lat_stats() {
    curl -sf "http://$LATR/stats" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("receiver_%s=%d" % (k, d[k]) for k in ("requests", "accepted", "distinct", "duplicates")))'
  }
  lat_row() { # latency_ms config(default|fixed2) count flush_timeout_s round
    case $2 in default) opts= ;; fixed2) opts=concurrency=fixed,connections=2 ;; esac
    lat_fault "{\"mode\":\"none\",\"latency_ms\":$1}"
    curl -sf -X POST "http://$LATR/admin/reset" >/dev/null
    B=$(bufdir)
    s0=$(date +%s)
    rc=0
    line=$(RBENCH_OPTS=$opts timeout -k 10 $(($4 + 60)) "$RB" latency "http://$LATR/log" "$KEY" "$B" $3 $4) || rc=$?
    case $line in
      "RESULT bench=latency "*) ;;
      *) line="RESULT bench=latency count=$3 flush=-1 flush_timeout_s=$4 total_ms=$(( ($(date +%s) - s0) * 1000 ))" ;;
    esac
    if [ $rc != 0 ]; then line="$line killed=1 exit=$rc"; fi
    echo "$line latency_ms=$1 config=$2 round=$5 $(lat_stats)" | emit
    rm -rf "$B"
  }
  if command -v wrk >/dev/null 2>&1; then
    wrk_setup
    run_wrk 2 "$LATR" | sed 's/^RESULT bench=wrk /RESULT bench=latwrk /' | emit
  fi
  for round in 1 2 3; do
    lat_row 0 fixed2 $LAT0_N $LAT_T $round
    lat_row 0 default $LAT0_N $LAT_T $round
  done
  if command -v wrk >/dev/null 2>&1; then
    lat_fault '{"mode":"none"}'
    run_wrk 2 "$LATR" | sed 's/^RESULT bench=wrk /RESULT bench=latwrk /' | emit
  fi
  for d in 10 50 200; do
    say "   $d ms"
    lat_row $d fixed2 $LAT_FN $LAT_FT 1
    lat_row $d default $LAT_N $LAT_T 1
  done
  lat_fault '{"mode":"none"}'
fi

# --- 7. CPU per delivered entry (issue 21) -------------------------------------------------------
# rbench cpu: typical entries at 500/s and 5,000/s for CPU_S s, and CPU_FULL_N in a tight loop,
# default options, then rarch_flush; the process's user + system CPU (getrusage) from the
# first rarch_log until flush returns, per delivered entry. Beside it wrk's CPU per request
# (2 connections, WRK_S s, its rusage from bench/cpurun.py) against the same receiver. CPU_ROUNDS
# rounds, wrk before the first and after each. Then, if strace works here, each load once more
# under `strace -f -c` (without the thread sampler) for the system calls per entry.
if want cpu; then
  say "7. CPU per delivered entry: 500/s and 5000/s for ${CPU_S} s, $CPU_FULL_N at full speed, $CPU_ROUNDS rounds, wrk beside"
  start_receiver cpu; CPUR=$ADDR
  cpu_reset() { curl -sf -X POST "http://$CPUR/admin/reset" >/dev/null; }
  cpu_accepted() {
    curl -sf "http://$CPUR/stats" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("receiver_accepted=%d receiver_distinct=%d" % (d["accepted"], d["distinct"]))'
  }
  cpu_wrk() { # round
    cpu_reset
    BENCH_BODY_FILE=$BODY BENCH_JWT=$JWT $PY bench/cpurun.py wrk -t2 -c2 -d"${WRK_S}s" \
      -s bench/wrk_post.lua "http://$CPUR/log" | grep '^RESULT' |
      sed "s/^RESULT bench=wrk /RESULT bench=cpuwrk /; s/\$/ connections=2 round=$1/" | emit
  }
  cpu_count() { if [ "$1" = 0 ]; then echo "$CPU_FULL_N"; else echo $(($1 * CPU_S)); fi; }
  wrk_setup
  cpu_wrk 0
  r=1
  while [ $r -le "$CPU_ROUNDS" ]; do
    for rate in 500 5000 0; do
      cpu_reset
      B=$(bufdir)
      line=$(RBENCH_OPTS=$CPU_OPTS "$RB" cpu "http://$CPUR/log" "$KEY" "$B" $rate "$(cpu_count $rate)")
      echo "$line round=$r $(cpu_accepted)" | emit
      rm -rf "$B"
    done
    cpu_wrk $r
    r=$((r + 1))
  done
  if command -v strace >/dev/null 2>&1; then
    for rate in 500 5000 0; do
      n=$(cpu_count $rate); [ "$rate" = 0 ] && [ "$n" -gt 20000 ] && n=20000
      cpu_reset
      B=$(bufdir)
      rc=0
      line=$(RBENCH_OPTS=$CPU_OPTS RBENCH_NO_SAMPLER=1 strace -f -c -o "$WORK/strace.txt" \
        "$RB" cpu "http://$CPUR/log" "$KEY" "$B" $rate $n 2>/dev/null) || rc=$?
      rm -rf "$B"
      case $line in "RESULT bench=cpu "*) ;; *) say "   strace did not run here (exit $rc): no system call counts"; break ;; esac
      # strace -c: "% time seconds usecs/call calls [errors] syscall", then a "total" line.
      sc=$(awk '$NF == "total" { printf "sc_total=%s ", $4 }
                $1 ~ /^[0-9.]+$/ && $NF != "total" { printf "sc_%s=%s ", $NF, $4 }' "$WORK/strace.txt")
      echo "$line $sc" | sed 's/^RESULT bench=cpu /RESULT bench=cpustrace /' | emit
    done
  fi
fi

# --- 8. OTLP through a Collector (issue 17) ------------------------------------------------------
# The default options, OTLP_N typical entries in a tight loop from one thread, then
# rarch_flush(600 s) (rbench sink): (a) the rarch sink to a receiver's /log, (b) sink=otlp to a
# real OpenTelemetry Collector (bench/otelcol.yaml: otlp receiver, batch 8192 / 200 ms,
# otlp_http exporter with encoding json and a sending queue) that exports to the same receiver's
# /v1/logs (-otlp-count-only), (c) the same with compression=gzip. The rate is OTLP_N over the
# time from the first rarch_log until flush returns; for (b) and (c) rbench then polls the
# receiver's /otlp/stats every 2 ms until it has counted OTLP_N records (e2e). Rows alternate,
# OTLP_ROUNDS rounds; each row: a fresh buffer_dir, the receiver's counters cleared, and the
# CPU (utime + stime, /proc/PID/stat) the Collector and the receiver spent from before rbench
# started until the receiver had everything. Every entry must arrive exactly once.
OTLP_FAIL=0
if want otlp; then
  say "8. OTLP through a Collector: $OTLP_N entries a row, $OTLP_ROUNDS round(s), rarch sink beside"
  start_receiver otlp -otlp-count-only; OTR=$ADDR; OTR_PID=$RPID
  start_collector "$OTR"
  TCK=$(getconf CLK_TCK)
  cpu_ms() { awk -v t="$TCK" '{ printf "%d", ($14 + $15) * 1000 / t }' "/proc/$1/stat"; }
  otlp_stat() { curl -sf "http://$OTR/$1" | $PY -c "import json,sys; print(json.load(sys.stdin)[\"$2\"])"; }
  otlp_row() { # label sink opts round
    curl -sf -X POST "http://$OTR/admin/reset" >/dev/null
    B=$(bufdir)
    c0=$(cpu_ms $COL_PID); r0=$(cpu_ms $OTR_PID)
    rc=0
    case $2 in
      rarch) line=$(RBENCH_OPTS=$3 timeout -k 10 660 "$RB" sink rarch "http://$OTR/log" "$KEY" "$B" \
                 $OTLP_N 600) || rc=$? ;;
      otlp) line=$(RBENCH_OPTS=$3 timeout -k 10 720 "$RB" sink otlp "http://127.0.0.1:$COL_PORT/v1/logs" - \
                 "$B" $OTLP_N 600 "http://$OTR/otlp/stats" records 60) || rc=$? ;;
    esac
    c1=$(cpu_ms $COL_PID); r1=$(cpu_ms $OTR_PID)
    case $line in
      "RESULT bench=sink "*) ;;
      *) line="RESULT bench=sink sink=$2 count=$OTLP_N flush=-1 rate=0" ;;
    esac
    if [ $rc != 0 ]; then line="$line killed=1 exit=$rc"; fi
    if [ $2 = rarch ]; then
      got=$(otlp_stat stats accepted); dist=$(otlp_stat stats distinct); col_cpu=0
    else
      got=$(otlp_stat otlp/stats records); dist=$got; col_cpu=$((c1 - c0))
    fi
    delivered=$(printf '%s\n' "$line" | sed -n 's/.* delivered=\([0-9]*\).*/\1/p')
    check=ok
    if [ "$rc" != 0 ] || [ "$got" != "$OTLP_N" ] || [ "$dist" != "$OTLP_N" ] ||
       [ "${delivered:-0}" != "$OTLP_N" ] || ! printf '%s\n' "$line" | grep -q ' flush=0 '; then
      check=FAIL; OTLP_FAIL=1
      say "   FAIL: $1 round $4: receiver counted $got ($dist distinct), library delivered ${delivered:-?}, of $OTLP_N (exit $rc)"
    fi
    echo "$line label=$1 opts=${3:-none} round=$4 receiver_count=$got receiver_distinct=$dist collector_cpu_ms=$col_cpu receiver_cpu_ms=$((r1 - r0)) check=$check" | emit
    rm -rf "$B"
  }
  r=1
  while [ $r -le "$OTLP_ROUNDS" ]; do
    otlp_row rarch rarch "" $r
    otlp_row otlp otlp "" $r
    otlp_row otlp-json otlp otlp_protocol=http/json $r
    if [ "$OTLP_GZIP" = 1 ]; then otlp_row otlp-gzip otlp compression=gzip $r; fi
    r=$((r + 1))
  done
  if grep -qiE 'error|panic' "$WORK/otelcol.log"; then
    say "   the Collector logged errors:"; grep -iE 'error|panic' "$WORK/otelcol.log" | tail -n 5 >&2
  fi
fi

# --- 9. the Go binding beside the OpenTelemetry Go SDK (issue 33) ---------------------------------
# bench/gosdk.sh starts its own receiver and Collector; its report goes to stderr
# (and bench/gosdk-results.md), its RESULT lines to this run's results.
GOSDK_FAIL=0
if want gosdk; then
  say "9. the Go binding beside the OpenTelemetry Go SDK (bench/gosdk.sh)"
  q=; [ $QUICK = 1 ] && q=--quick
  rm -f bench/gosdk-results.txt
  bench/gosdk.sh $q >"$WORK/gosdk.txt" || GOSDK_FAIL=1
  sed 's/^/   /' "$WORK/gosdk.txt" >&2
  grep '^RESULT ' bench/gosdk-results.txt >>"$OUT" 2>/dev/null || true
fi

echo "MACHINE elapsed_s=$(( $(date +%s) - T0 ))" >>"$OUT"
cp "$OUT" bench/results.txt
$PY bench/report.py "$OUT" bench/results.md
if [ $OTLP_FAIL = 1 ]; then echo "bench: the otlp table lost or duplicated entries (check=FAIL above)" >&2; exit 1; fi
if [ $GOSDK_FAIL = 1 ]; then echo "bench: bench/gosdk.sh failed (the binding lost records, or the run did not complete)" >&2; exit 1; fi
