#!/bin/sh
# Tests of the Go binding: run by `make test-go` from the repo root, after `make lib receiver`.
# vet, the tests under the race detector (against local receivers), then the example program
# against a fresh receiver, checking that the receiver got its 10 entries.
set -eu
cd "$(dirname "$0")"
export CGO_ENABLED=1

command -v go >/dev/null 2>&1 || { echo "run-tests.sh: go is not installed" >&2; exit 1; }
# The library: $RARCH_LOGGING_LIB if set (e.g. the package copied out of the repository, or an
# unpacked release tarball's lib/librarch_logging.so), else the repo's target/release, which
# link_repo.go points at. The header is looked for in $RARCH_LOGGING_INCLUDE, then in the
# include/ beside the library's directory (an installed prefix), then two levels up (the repo).
if [ -n "${RARCH_LOGGING_LIB:-}" ]; then
	[ -f "$RARCH_LOGGING_LIB" ] || { echo "run-tests.sh: RARCH_LOGGING_LIB=$RARCH_LOGGING_LIB: no such file" >&2; exit 1; }
	libdir=$(cd "$(dirname "$RARCH_LOGGING_LIB")" && pwd)
	[ -f "$libdir/librarch_logging.so" ] || { echo "run-tests.sh: no librarch_logging.so in $libdir (the linker needs that name)" >&2; exit 1; }
	incdir=
	for d in ${RARCH_LOGGING_INCLUDE:-} "$libdir/../include" "$libdir/../../include"; do
		if [ -f "$d/rarch_logging.h" ]; then incdir=$(cd "$d" && pwd); break; fi
	done
	[ -n "$incdir" ] || { echo "run-tests.sh: rarch_logging.h not found (set RARCH_LOGGING_INCLUDE)" >&2; exit 1; }
	# Flags from the environment come before link_repo.go's, so these directories win (the
	# defaults, -g -O2 and -g, are kept when the variables were unset).
	CGO_CFLAGS="-I$incdir ${CGO_CFLAGS:--g -O2}"
	CGO_LDFLAGS="-L$libdir -Wl,-rpath,$libdir ${CGO_LDFLAGS:--g}"
	export CGO_CFLAGS CGO_LDFLAGS
	echo "run-tests.sh: linking $libdir/librarch_logging.so, header from $incdir"
else
	[ -f ../../target/release/librarch_logging.so ] || { echo "run-tests.sh: build the library first (make lib), or set RARCH_LOGGING_LIB" >&2; exit 1; }
fi
RARCH_RECEIVER=${RARCH_RECEIVER:-$(pwd)/../../examples/receiver/receiver}
export RARCH_RECEIVER
[ -x "$RARCH_RECEIVER" ] || { echo "run-tests.sh: no receiver at $RARCH_RECEIVER (make receiver)" >&2; exit 1; }

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 5m ./...

echo "== example against a fresh receiver"
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
go build -o "$tmp/example" ./example
go build -o "$tmp/httpget" ./internal/httpget
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$RARCH_RECEIVER" -key "$key" -addr-file "$tmp/addr" -quiet &
pid=$!
i=0
while [ ! -s "$tmp/addr" ]; do
	i=$((i + 1))
	[ "$i" -le 200 ] || { echo "receiver did not start" >&2; exit 1; }
	sleep 0.05
done
addr=$(cat "$tmp/addr")
# The example's disk buffer goes to ./var/log: run it in the temp dir.
(cd "$tmp" && RARCH_LOGGING_URL="http://$addr/log" RARCH_LOGGING_API_KEY="$key" ./example)
"$tmp/httpget" "http://$addr/entries" > "$tmp/entries.jsonl"
n=$(grep -c '"service":"example"' "$tmp/entries.jsonl" || true)
for level in DEBUG INFO WARN ERROR FATAL; do
	c=$(grep -c "\"level\":\"$level\"" "$tmp/entries.jsonl" || true)
	[ "$c" -eq 2 ] || { echo "example: $c $level entries received, want 2" >&2; cat "$tmp/entries.jsonl" >&2; exit 1; }
done
[ "$n" -eq 10 ] || { echo "example: the receiver got $n entries, want 10" >&2; exit 1; }
echo "example: the receiver got all 10 entries"
echo "go binding: all tests passed"
