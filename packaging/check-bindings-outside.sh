#!/usr/bin/env bash
# `make test-bindings-outside`: each binding's own tests (bindings/*/run-tests.sh) run from a copy
# of the binding outside the repository, with the library and the receiver given only by
# RARCH_LOGGING_LIB and RARCH_RECEIVER, as a team that vendors a binding would run them.
#
#   packaging/check-bindings-outside.sh [go] [node] [python]     (default: all three)
#
# The library is $RARCH_LOGGING_LIB if set; else the release tarball (in $DIST_DIR,
# target/test-dist/out or dist/) is unpacked into the scratch directory and its
# lib/librarch_logging.so is used (its include/ gives the Go binding its header).
# Ends with "check-bindings-outside: N passed, N failed"; KEEP=1 keeps the scratch directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
RECEIVER=${RARCH_RECEIVER:-$ROOT/examples/receiver/receiver}
[ -x "$RECEIVER" ] || { echo "check-bindings-outside: no receiver at $RECEIVER (make receiver)" >&2; exit 1; }
[ $# -gt 0 ] || set -- go node python

S=$(mktemp -d "${TMPDIR:-/tmp}/rarch-bindings-outside.XXXXXX")
S=$(cd "$S" && pwd -P)
case "$S/" in "$ROOT"/*) echo "check-bindings-outside: $S is inside the checkout" >&2; exit 1 ;; esac
trap 'if [ "${KEEP:-0}" = 1 ]; then echo "kept $S"; else rm -rf "$S"; fi' EXIT

# The receiver travels with the tests: a copy outside the checkout too.
install -m 0755 "$RECEIVER" "$S/receiver"
RECEIVER=$S/receiver

LIB=${RARCH_LOGGING_LIB:-}
unset RARCH_LOGGING_LIB RARCH_LOGGING_REPO
if [ -z "$LIB" ]; then
	tarball=
	for d in ${DIST_DIR:-} "$ROOT/target/test-dist/out" "$ROOT/dist"; do
		f=$d/rarch-logging-$VERSION-linux-x86_64.tar.gz
		if [ -f "$f" ]; then tarball=$f; break; fi
	done
	[ -n "$tarball" ] || { echo "check-bindings-outside: no release tarball: make dist, or set RARCH_LOGGING_LIB" >&2; exit 1; }
	mkdir -p "$S/prefix"
	tar -xzf "$tarball" -C "$S/prefix" --strip-components=1
	LIB=$S/prefix/lib/librarch_logging.so
	echo "check-bindings-outside: library from $tarball"
fi
echo "check-bindings-outside: RARCH_LOGGING_LIB=$LIB RARCH_RECEIVER=$RECEIVER, copies in $S"

passed=0 failed=0
for b in "$@"; do
	src=$ROOT/bindings/$b
	[ -f "$src/run-tests.sh" ] || { echo "no binding $b" >&2; exit 2; }
	dst=$S/$b
	# The binding's sources, without what its tests or builds left in the checkout.
	tar -C "$ROOT/bindings" --exclude=node_modules --exclude=.venv --exclude=__pycache__ \
		--exclude=build --exclude='*.egg-info' --exclude=_lib --exclude=prebuilds --exclude=var \
		--exclude=.pytest_cache -cf - "$b" | tar -xf - -C "$S"
	t0=$SECONDS
	set +e
	(cd "$dst" && env RARCH_LOGGING_LIB="$LIB" RARCH_RECEIVER="$RECEIVER" sh ./run-tests.sh) > "$S/$b.log" 2>&1
	rc=$?
	set -e
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $b binding, from $dst ($((SECONDS - t0)) s): $(grep -E 'passed|pass [0-9]' "$S/$b.log" | tail -n2 | tr '\n' ' ')"
	else
		failed=$((failed + 1))
		echo "FAIL $b binding, from $dst"
		tail -n 60 "$S/$b.log" | sed 's/^/     /'
	fi
done
echo "check-bindings-outside: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
