#!/bin/sh
# The footprint of ONE call of rarch_log with the typical entry (issue 18: "report cache lines
# and pages per call (callgrind or cachegrind) before and after"), for one or more builds of
# the library, compared by path:
#
#   bench/footprint.sh [LIB.so ...]      (default target/release/librarch_logging.so, built
#                                         with `cargo build --release` if missing)
#   e.g. bench/footprint.sh target/bench/rev-1ca7531/target/release/librarch_logging.so \
#                           target/release/librarch_logging.so
#
# Environment: FOOTPRINT_MODE ("pause", "b2b" or both, space-separated; default pause),
# FOOTPRINT_RUNS (runs per library and mode, default 3: the run with the median instruction
# count is reported), FOOTPRINT_WARM (untimed calls before the measured one, default 500),
# FOOTPRINT_KEEP=1 keeps the callgrind files (their directory is printed).
# Needs valgrind (callgrind) with its headers (valgrind/callgrind.h), a C compiler and
# python3; valgrind is installed with apt-get if missing (as root, or with sudo -n).
#
# Method. bench/footprint.c loads the library with dlopen, makes a logger against a local
# receiver (examples/receiver/receiver, built with `make receiver` if missing; without Go, a
# loopback port where nothing listens: the entries are still accepted by rarch_log), makes
# FOOTPRINT_WARM calls with the typical entry (bench/typical_entry.h), then
#   pause: rarch_flush and usleep(20000) (the first call after a pause, as `rbench pause`);
#   b2b:   10 more calls back to back (a call in the middle of a warm series);
# then exactly one measured call between CALLGRIND_START_INSTRUMENTATION and
# CALLGRIND_STOP_INSTRUMENTATION, then more calls, a flush, free. It runs under
#   valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no --toggle-collect=rarch_log
#            --dump-instr=yes --cache-sim=yes --I1=1048576,16,64 --D1=1048576,16,64
#            --LL=67108864,16,4096
# so that only that one call is instrumented, and only the instructions executed inside
# rarch_log (and its callees, in any object) by the calling thread are counted. That window
# is the only instrumented (and cache-simulated) stretch of the run, so the simulated caches
# start it empty, and they are far larger than one call needs (no evictions): every distinct
# line the call touches is exactly one cold miss:
#   instructions   Ir of the call
#   code_lines     distinct 64-byte lines of the addresses of the executed instructions
#                  (--dump-instr), per object; code_lines_lib: those in the library
#   code_pages     distinct 4 KiB pages of the same addresses; code_pages_lib: in the library
#   code_lines_sim I1 misses (cross-check: counts also the second line of an instruction that
#                  straddles two; code_lines counts an instruction by its first byte)
#   code_pages_sim LL instruction misses with 4 KiB "lines" (the LL is only asked on an I1
#                  miss, and the first touch of a page is always an I1 miss)
#   data_lines     D1 read + write misses (write-allocate): distinct 64-byte data lines
#                  (stack, heap, the library's statics, the caller's strings)
#   data_pages     LL data read + write misses with 4 KiB lines: distinct 4 KiB data pages
# Limits: the simulated caches are shared by all threads and the sender threads run (not
# counted) while the call is instrumented: a line a sender touched first in the window is not
# counted for the call (the *_sim and data figures can only be low by that; in pause mode the
# senders are idle). The vDSO's clock_gettime runs as a system call under valgrind (not
# counted); kernel work is not counted. Addresses are offsets in each object, which keep the
# line and page boundaries (objects are mapped page-aligned).
# Output: per library, one line
#   RESULT bench=footprint lib=<path> mode=... instructions=... code_lines=... code_pages=...
#          code_pages_lib=... data_lines=... data_pages=... (and more fields)
# on stdout, and a human summary on stderr. The earlier figure (docs/performance-history.md):
# 212 distinct code lines in 27 pages (23 in the library), about 4,100 instructions.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODES=${FOOTPRINT_MODE:-pause}
RUNS=${FOOTPRINT_RUNS:-3}
WARM=${FOOTPRINT_WARM:-500}
PY=${PYTHON:-python3}
say() { printf '== %s\n' "$*" >&2; }
for m in $MODES; do
  case $m in pause|b2b) ;; *) echo "FOOTPRINT_MODE: pause or b2b, not $m" >&2; exit 2 ;; esac
done

# --- tools ---------------------------------------------------------------------------------
need_valgrind() {
  command -v valgrind >/dev/null 2>&1 && [ -f /usr/include/valgrind/callgrind.h ]
}
if ! need_valgrind; then
  say "installing valgrind (callgrind and its headers)"
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && apt-get install -y -qq valgrind; } >/dev/null 2>&1 || true
  else
    { sudo -n apt-get update -qq && sudo -n apt-get install -y -qq valgrind; } >/dev/null 2>&1 || true
  fi
  need_valgrind || {
    echo "footprint.sh: valgrind with /usr/include/valgrind/callgrind.h is required" \
      "(apt-get install valgrind)" >&2
    exit 1
  }
fi
command -v "$PY" >/dev/null 2>&1 || { echo "footprint.sh: python3 is required" >&2; exit 1; }

if [ $# -eq 0 ]; then
  if [ ! -f target/release/librarch_logging.so ]; then
    say "building the library (cargo build --release)"
    cargo build --release -q >&2
  fi
  set -- target/release/librarch_logging.so
fi
for lib in "$@"; do
  [ -f "$lib" ] || { echo "footprint.sh: $lib: no such file" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rarch-footprint.XXXXXX")
RPID=
cleanup() {
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
  if [ "${FOOTPRINT_KEEP:-0}" = 1 ]; then say "callgrind files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CC=${CC:-cc}
$CC -O2 -g -std=gnu11 -Wall -Wextra -Iinclude bench/footprint.c -ldl -o "$WORK/footprint"

# --- the receiver (or a port where nothing listens) ---------------------------------------------
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
RECV=${RARCH_RECEIVER:-$ROOT/examples/receiver/receiver}
if [ ! -x "$RECV" ] && command -v go >/dev/null 2>&1; then
  say "building the receiver (make receiver)"
  make -s receiver >&2 || true
fi
if [ -x "$RECV" ]; then
  "$RECV" -key "$KEY" -addr-file "$WORK/addr" -quiet -keep=false 2>"$WORK/receiver.log" &
  RPID=$!
  i=0
  while [ ! -s "$WORK/addr" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "footprint.sh: the receiver did not start" >&2; exit 1; }
    sleep 0.05
  done
  URL="http://$(cat "$WORK/addr")/log"
  SERVER=receiver
else
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$PORT/log"
  SERVER=down
  say "no receiver (make receiver needs Go): logging to $URL, where nothing listens"
fi

# --- one callgrind output -> key=value figures ----------------------------------------------------
cat >"$WORK/parse.py" <<'EOF'
import re, sys
path, lib = sys.argv[1], sys.argv[2]
events = None
names = {}          # "(id)" -> name, for compressed files
ob = None
skip = False        # the line after calls= is the inclusive cost of a call: not this object's
addrs = {}          # object -> set of addresses executed (Ir > 0)
sums = {}           # object -> event -> sum
def name_of(v):
    m = re.match(r"\((\d+)\)(?:\s+(.*))?$", v)
    if not m:
        return v
    if m.group(2) is not None:
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), v)
for line in open(path):
    line = line.rstrip("\n")
    if line.startswith("events:"):
        events = line.split()[1:]
        continue
    if line.startswith("ob="):
        ob = name_of(line[3:])
        continue
    if line.startswith("cob="):
        name_of(line[4:])
        continue
    if line.startswith("calls="):
        skip = True
        continue
    if not line or not (line[0] in "0123456789+-*"):
        continue
    if skip:
        skip = False
        continue
    f = line.split()
    if not f[0].startswith("0x"):
        sys.exit("parse.py: relative positions (run callgrind with --compress-pos=no)")
    a = int(f[0], 16)
    vals = [int(x) for x in f[2:]]   # positions: instr line
    vals += [0] * (len(events) - len(vals))
    ev = dict(zip(events, vals))
    s = sums.setdefault(ob, {})
    for k, v in ev.items():
        s[k] = s.get(k, 0) + v
    if ev.get("Ir", 0) > 0:
        addrs.setdefault(ob, set()).add(a)
def tot(k, objs=None):
    return sum(v.get(k, 0) for o, v in sums.items() if objs is None or o in objs)
libobjs = {o for o in sums if o == lib}
lines = {(o, a >> 6) for o, s in addrs.items() for a in s}
pages = {(o, a >> 12) for o, s in addrs.items() for a in s}
out = {
    "instructions": tot("Ir"),
    "instructions_lib": tot("Ir", libobjs),
    "code_lines": len(lines),
    "code_lines_lib": sum(1 for o, _ in lines if o in libobjs),
    "code_pages": len(pages),
    "code_pages_lib": sum(1 for o, _ in pages if o in libobjs),
    "code_lines_sim": tot("I1mr"),
    "code_pages_sim": tot("ILmr"),
    "data_lines": tot("D1mr") + tot("D1mw"),
    "data_pages": tot("DLmr") + tot("DLmw"),
    "data_refs": tot("Dr") + tot("Dw"),
}
objs = sorted(o for o in addrs if o not in libobjs)
other = ",".join("%s:%d/%d" % (o.rsplit("/", 1)[-1], len({a >> 6 for a in addrs[o]}),
                               len({a >> 12 for a in addrs[o]})) for o in objs)
print(" ".join("%s=%d" % kv for kv in out.items()) + " other_lines_pages=" + (other or "-"))
EOF

# --- each library ----------------------------------------------------------------------------
say "footprint of one rarch_log call (typical entry; server: $SERVER; modes: $MODES; $RUNS runs each)"
n=0
for lib in "$@"; do
  n=$((n + 1))
  # A copy: a rebuild of the original while this runs does not change what is measured, and
  # the copy's path names the library's object in the callgrind output.
  snap=$WORK/lib$n/librarch_logging.so
  mkdir -p "$WORK/lib$n"
  cp "$lib" "$snap"
  abs=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
  for mode in $MODES; do
    : >"$WORK/runs.$n.$mode"
    r=0
    while [ $r -lt "$RUNS" ]; do
      r=$((r + 1))
      buf=$(mktemp -d "$WORK/buf.XXXXXX")
      out=$WORK/cg.$n.$mode.$r
      if ! valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
          --toggle-collect=rarch_log --dump-instr=yes --compress-strings=no --compress-pos=no \
          --cache-sim=yes --I1=1048576,16,64 --D1=1048576,16,64 --LL=67108864,16,4096 \
          --callgrind-out-file="$out" \
          "$WORK/footprint" "$snap" "$URL" "$KEY" "$buf" "$WARM" "$mode" \
          >"$out.stdout" 2>"$out.stderr"; then
        echo "footprint.sh: the driver failed for $lib ($mode):" >&2
        cat "$out.stdout" "$out.stderr" >&2
        exit 1
      fi
      rm -rf "$buf"
      fig=$($PY "$WORK/parse.py" "$out" "$snap")
      echo "$fig" >>"$WORK/runs.$n.$mode"
    done
    # The run with the median instruction count, all its figures together.
    pick=$(sort -t= -k2,2n "$WORK/runs.$n.$mode" | sed -n "$(( (RUNS + 1) / 2 ))p")
    ins=$(sed -n 's/^instructions=\([0-9]*\) .*/\1/p' "$WORK/runs.$n.$mode" | tr '\n' '/' | sed 's/\/$//')
    ver=$(sed -n 's/.*version=\([^ ]*\).*/\1/p' "$WORK/cg.$n.$mode.1.stdout")
    echo "RESULT bench=footprint lib=$abs mode=$mode server=$SERVER version=$ver runs=$RUNS $pick runs_instructions=$ins"
    get() { printf '%s\n' "$pick" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    say "$lib ($mode): $(get instructions) instructions; code $(get code_lines) lines in" \
      "$(get code_pages) pages ($(get code_lines_lib) lines, $(get code_pages_lib) pages in the" \
      "library; others $(get other_lines_pages) lines/pages); data $(get data_lines) lines in" \
      "$(get data_pages) pages; instructions of the $RUNS runs: $ins"
  done
done
say "earlier figure (docs/performance-history.md): 212 code lines in 27 pages (23 in the library), ~4,100 instructions"
