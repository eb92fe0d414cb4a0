#!/usr/bin/env bash
# `make test-cross`: each platform's artifacts of `make dist` (packaging/targets.sh: x86_64 and
# aarch64 with glibc 2.17, x86_64 with musl), as a user of that platform gets them:
#
#   floor    every shipped library needs no GLIBC_ version above 2.17 (check-glibc-floor.sh),
#            and the check fails on a library linked against this machine's glibc
#   tarball  unpacked into a prefix; the C and C++ test programs of tests/c, built with the
#            platform's compilers (gcc, aarch64-linux-gnu-gcc/g++, musl-gcc and zig c++ for
#            musl) against the prefix, run (aarch64 under qemu-aarch64-static) by the scenarios
#            of tests/c_programs.rs, which check field by field what reached the receiver
#   .deb     architecture, library directory and the library's machine
#   wheel    tag (the WHEEL file and the name), the library's machine, auditwheel's verdict
#   npm      prebuilds/<dir>/librarch_logging.so of the platform's machine
#
#   packaging/check-cross.sh [DIST_DIR]    (default target/test-dist/out; DIST_TARGETS: a subset)
# Ends with "check-cross: N passed, N failed"; KEEP=1 keeps the scratch directory.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DIST=$(cd "${1:-$ROOT/target/test-dist/out}" && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# shellcheck source=packaging/targets.sh
. packaging/targets.sh
TARGETS=${DIST_TARGETS:-$DIST_TARGETS_ALL}
export RARCH_RECEIVER=${RARCH_RECEIVER:-$ROOT/examples/receiver/receiver}
[ -x "$RARCH_RECEIVER" ] || { echo "check-cross: no receiver at $RARCH_RECEIVER (make receiver)" >&2; exit 1; }
AUDITWHEEL=$ROOT/target/dist-tools/bin/auditwheel

S=$(mktemp -d "${TMPDIR:-/tmp}/rarch-check-cross.XXXXXX")
trap 'if [ "${KEEP:-0}" = 1 ]; then echo "check-cross: kept $S"; else rm -rf "$S"; fi' EXIT

passed=0 failed=0
check() { # check NAME COMMAND...: runs it with set -e, its output in a log shown on failure
	local name=$1 log=$S/check-$((passed + failed)).log rc t0=$SECONDS
	shift
	set +e
	(set -eE; trap 'echo "failed (line $LINENO): $BASH_COMMAND"' ERR; "$@") > "$log" 2>&1
	rc=$?
	set -e
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $name ($((SECONDS - t0)) s)"
		[ "${VERBOSE:-0}" = 0 ] || sed 's/^/     /' "$log"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
		sed 's/^/     /' "$log"
	fi
}
machine() { readelf -h "$1" | sed -n 's/^ *Machine: *//p'; }
is_machine() { # is_machine FILE: the platform's machine
	local m
	m=$(machine "$1")
	[ "$m" = "$T_MACHINE" ] || { echo "$1: machine $m, not $T_MACHINE"; return 1; }
}

check_floor() {
	bash packaging/check-glibc-floor.sh "$DIST"
	# The check can fail: a library that calls pthread_create, linked against this machine's
	# glibc (2.34 or later has it as GLIBC_2.34), must be refused.
	printf '#include <pthread.h>\nvoid *f(void *a) { return a; }\nint g(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n' > "$S/newer.c"
	cc -shared -fPIC -o "$S/libnewer.so" "$S/newer.c"
	local out
	if out=$(bash packaging/check-glibc-floor.sh "$S/libnewer.so"); then
		if readelf -V -W "$S/libnewer.so" | grep -q 'GLIBC_2\.\(1[89]\|[2-9][0-9]\)'; then
			echo "the check let a library above the floor through"
			return 1
		fi
		echo "note: this machine's glibc gives pthread_create no version above 2.17"
	else
		echo "and it refuses a library linked against this machine's glibc: ${out#FAIL }"
	fi
}

# The scenarios of tests/c_programs.rs that build and run one program each (natively, that is
# without valgrind and sanitizers), here with the platform's compilers against its tarball.
SCENARIOS=(roundtrip_native bad_input_native auth_failure_native cpp_wrapper_native
	threads_8k_all_arrive_native)

check_tarball() {
	local tgz=$DIST/rarch-logging-$VERSION-$T_NAME.tar.gz p=$S/$T_NAME/prefix
	[ -f "$tgz" ] || { echo "no $tgz"; return 1; }
	mkdir -p "$p"
	tar -xzf "$tgz" -C "$p" --strip-components=1
	is_machine "$p/lib/librarch_logging.so.$VERSION"
	local scenarios=("${SCENARIOS[@]}")
	if [ -z "$T_CXX" ]; then
		scenarios=("${scenarios[@]/cpp_wrapper_native/}")
		echo "$T_NAME: no C++ compiler for this platform here: cpp_wrapper is not run"
	fi
	echo "$T_NAME: $T_CC${T_CXX:+ / $T_CXX}${T_RUN:+, run by $T_RUN}"
	RARCH_LOGGING_LIB=$p/lib/librarch_logging.so RARCH_TEST_INCLUDE=$p/include \
		RARCH_TEST_CC=$T_CC RARCH_TEST_CXX=$T_CXX RARCH_TEST_RUNNER=$T_RUN \
		cargo test --release --test c_programs -- --exact --test-threads=2 ${scenarios[*]} \
		> "$S/$T_NAME/cargo-test.log" 2>&1 || { cat "$S/$T_NAME/cargo-test.log"; return 1; }
	# Every scenario ran (a renamed test would otherwise be skipped by the filter).
	grep -E '^test .* ok$' "$S/$T_NAME/cargo-test.log"
	local n
	n=$(printf '%s\n' ${scenarios[*]} | grep -c .)
	grep -q "test result: ok. $n passed" "$S/$T_NAME/cargo-test.log" ||
		{ cat "$S/$T_NAME/cargo-test.log"; echo "not all of ${scenarios[*]} ran"; return 1; }
	# The programs are the platform's (not this machine's, if it is another).
	is_machine "$ROOT/target/tmp/c_programs/roundtrip"
	[ -z "$T_CXX" ] || is_machine "$ROOT/target/tmp/c_programs/cpp_wrapper"
}

check_deb() {
	local deb=$DIST/librarch-logging0_${VERSION}_$T_DEBARCH.deb d=$S/$T_NAME/deb
	[ -f "$deb" ] || { echo "no $deb"; return 1; }
	[ "$(dpkg-deb -f "$deb" Architecture)" = "$T_DEBARCH" ]
	dpkg-deb -x "$deb" "$d"
	is_machine "$d/usr/lib/$T_TRIPLET/librarch_logging.so.$VERSION"
	local dep v
	dep=$(dpkg-deb -f "$deb" Depends)
	echo "$(dpkg-deb -f "$deb" Package) $T_DEBARCH: Depends: $dep"
	# It installs where the library runs: libc6 no newer than the floor.
	v=$(printf '%s\n' "$dep" | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
	[ -n "$v" ] && [ "$(printf '%s\n%s\n' "$v" "$GLIBC_FLOOR" | sort -V | tail -n1)" = "$GLIBC_FLOOR" ] ||
		{ echo "Depends asks for libc6 ${v:-?}, above $GLIBC_FLOOR"; return 1; }
}

check_wheel() {
	local whl= f d=$S/$T_NAME/wheel tags
	for f in "$DIST"/redarch_logging_client-"$VERSION"-py3-none-*"$T_WHEEL"*.whl; do
		[ -f "$f" ] && whl=$f
	done
	[ -n "$whl" ] || { echo "no wheel tagged $T_WHEEL in $DIST"; return 1; }
	echo "${whl##*/}"
	mkdir -p "$d"
	python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$whl" "$d"
	tags=$(sed -n 's/^Tag: //p' "$d"/*.dist-info/WHEEL | paste -sd' ' -)
	echo "WHEEL: Tag: $tags"
	case " $tags " in *" py3-none-$T_WHEEL "*) ;; *) echo "no py3-none-$T_WHEEL tag"; return 1 ;; esac
	if [ "$T_LIBC" = gnu ]; then
		case " $tags " in *" py3-none-manylinux2014_$T_ARCH "*) ;; *) echo "no manylinux2014 alias"; return 1 ;; esac
	fi
	is_machine "$d/redarch_logging_client/_lib/librarch_logging.so"
	if [ -x "$AUDITWHEEL" ]; then
		PATH=$(dirname "$AUDITWHEEL"):$PATH "$AUDITWHEEL" show "$whl" > "$d/show.txt" 2>&1 || { cat "$d/show.txt"; return 1; }
		grep -q "\"$T_WHEEL\"" "$d/show.txt" || { cat "$d/show.txt"; echo "auditwheel does not say $T_WHEEL"; return 1; }
		echo "auditwheel show: consistent with $T_WHEEL"
	else
		echo "auditwheel is not in target/dist-tools: the tags are checked from the WHEEL file only"
	fi
}

check_npm() {
	local tgz=$DIST/rarch-logging-$VERSION.tgz d=$S/npm
	[ -f "$tgz" ] || { echo "no $tgz"; return 1; }
	[ -d "$d" ] || { mkdir -p "$d" && tar -xzf "$tgz" -C "$d"; }
	is_machine "$d/package/prebuilds/$T_NPM/librarch_logging.so"
	cmp "$d/package/prebuilds/$T_NPM/librarch_logging.so" "$S/$T_NAME/prefix/lib/librarch_logging.so.$VERSION"
}

echo "check-cross: $DIST, version $VERSION, platforms $TARGETS"
check "glibc floor: every shipped library needs at most GLIBC_$GLIBC_FLOOR" check_floor
for key in $TARGETS; do
	target_vars "$key"
	check "$T_NAME tarball: tests/c programs ($T_CC) deliver to the receiver" check_tarball
	[ -z "$T_DEBARCH" ] || check "$T_NAME .deb ($T_DEBARCH): architecture, library" check_deb
	check "$T_NAME wheel: $T_WHEEL, library machine" check_wheel
	check "$T_NAME npm: prebuilds/$T_NPM is the tarball's library" check_npm
done
echo "check-cross: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
