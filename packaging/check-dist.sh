#!/usr/bin/env bash
# `make test-dist`: installs each artifact of `make dist` as someone without the repository
# would, in a scratch directory outside the checkout, with RARCH_LOGGING_LIB unset and the
# checkout's target/ on no search path, and has each deliver entries to a local receiver:
#
#   tarball  unpacked into a prefix: a C program built with pkg-config; the prefix moved, then
#            C (shared and static) and C++ programs built with CMake; a Go program through a
#            `replace` of the shipped module and pkg-config
#   .deb     the three packages unpacked (dpkg -x) into a root: fields, the debug file by build
#            id, a C program built with pkg-config (PKG_CONFIG_SYSROOT_DIR) and with CMake
#   wheel    installed with pip into a fresh venv: the old client's README example, unchanged
#   npm      installed into a fresh project: a script that logs and flushes
#
#   packaging/check-dist.sh [DIST_DIR]    (default: dist/; RARCH_RECEIVER: the receiver)
# Ends with "check-dist: N passed, N failed, N skipped"; exits non-zero if one failed.
# KEEP=1 keeps the scratch directory.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST=$(cd "${1:-${DIST_DIR:-$ROOT/dist}}" && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
MAJOR=${VERSION%%.*}
TRIPLET=x86_64-linux-gnu
RECEIVER=${RARCH_RECEIVER:-$ROOT/examples/receiver/receiver}
[ -x "$RECEIVER" ] || { echo "check-dist: no receiver at $RECEIVER (make receiver)" >&2; exit 1; }

# Nothing of the checkout's build may be found: no variable naming the library, and no entry
# under the checkout in any search path.
unset RARCH_LOGGING_LIB RARCH_LOGGING_REPO RARCH_LOGGING_INCLUDE RARCH_RECEIVER CGO_CFLAGS \
	CGO_LDFLAGS PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
scrub() { # scrub VALUE: VALUE's :-separated entries that are not under the checkout
	printf '%s' "$1" | tr ':' '\n' | grep -v -e "^$ROOT\$" -e "^$ROOT/" | paste -sd: - || true
}
for v in PATH LD_LIBRARY_PATH LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH CPATH C_INCLUDE_PATH \
	CPLUS_INCLUDE_PATH NODE_PATH PYTHONPATH GOPATH; do
	if [ -n "${!v:-}" ]; then
		val=$(scrub "${!v}")
		if [ -n "$val" ]; then export "$v=$val"; else unset "$v"; fi
	fi
done

S=$(mktemp -d "${TMPDIR:-/tmp}/rarch-check-dist.XXXXXX")
S=$(cd "$S" && pwd -P)
case "$S/" in "$ROOT"/*) echo "check-dist: the scratch directory $S is inside the checkout" >&2; exit 1 ;; esac
rpid=
cleanup() {
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "check-dist: kept $S"; else rm -rf "$S"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$S"

# The receiver, on a free port with a fresh key; every program is configured through the
# environment only, as a service would be.
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$RECEIVER" -addr 127.0.0.1:0 -key "$key" -addr-file "$S/receiver.addr" -quiet &
rpid=$!
for _ in $(seq 200); do [ -s "$S/receiver.addr" ] && break; sleep 0.05; done
[ -s "$S/receiver.addr" ] || { echo "check-dist: the receiver did not start" >&2; exit 1; }
BASE="http://$(cat "$S/receiver.addr")"
export RARCH_LOGGING_URL="$BASE/log" RARCH_LOGGING_API_KEY="$key"
unset RARCH_LOGGING_DEFAULT_LEVEL
get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$BASE$1"; }

# ---------------------------------------------------------------------------------------------
passed=0 failed=0 skipped=0
: > "$S/expected" # "SERVICE N" lines: the entries each program must have delivered
check() { # check NAME FUNCTION: runs FUNCTION with set -e, its output in a log shown on failure
	local name=$1 fn=$2 rc t0=$SECONDS
	set +e
	(set -eE; trap 'echo "failed (line $LINENO): $BASH_COMMAND"' ERR; "$fn") > "$S/$fn.log" 2>&1
	rc=$?
	set -e
	case $rc in
	0) passed=$((passed + 1)); echo "ok   $name ($((SECONDS - t0)) s)" ;;
	77) skipped=$((skipped + 1)); echo "skip $name: $(tail -n1 "$S/$fn.log")" ;;
	*) failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$S/$fn.log" ;;
	esac
}
need() { # need FILE...: the artifacts, or a skip
	local f
	for f in "$@"; do [ -f "$f" ] || { echo "$f: not built"; exit 77; }; done
}
has_section() { readelf -S "$1" | grep " $2 " >/dev/null; }
# uses_lib PROGRAM DIR: the program's librarch_logging is the one in DIR, not the checkout's.
uses_lib() {
	local line
	line=$(ldd "$1" | grep librarch_logging) || { echo "$1 does not load librarch_logging"; return 1; }
	case "$line" in *"=> $2/"*) ;; *) echo "$1 loads the wrong library: $line"; return 1 ;; esac
	case "$line" in *"$ROOT"*) echo "$1 loads the checkout's library: $line"; return 1 ;; esac
}
run() { # run SERVICE PROGRAM [ARGS]: runs a program from a directory of its own
	local d=$S/run/$1
	mkdir -p "$d"
	(cd "$d" && "${@:2}")
	expects "$1" 1
}
expects() { echo "$1 $2" >> "$S/expected"; }

cat > "$S/main.c" <<'EOF'
#include <stdio.h>
#include <rarch_logging.h>
#include <rarch_logging_macros.h>
int main(int argc, char **argv) {
    rarch_logger *log = rarch_logger_new(argc > 1 ? argv[1] : "dist-c", NULL, NULL);
    if (!log) { char e[256]; rarch_last_error(e, sizeof e); fprintf(stderr, "%s\n", e); return 2; }
    rarch_status s = RARCH_INFO_CTX(log, "from a release artifact", "{\"version\":\"" RARCH_VERSION "\"}");
    if (s == RARCH_OK) s = rarch_flush(log, 30000);
    rarch_logger_free(log);
    printf("%s: %s\n", argc > 1 ? argv[1] : "dist-c", rarch_status_str(s));
    return s == RARCH_OK ? 0 : 1;
}
EOF
cat > "$S/main.cpp" <<'EOF'
#include <rarch_logging.hpp>
#include <iostream>
int main(int argc, char **argv) {
    rarch::Logger log(argc > 1 ? argv[1] : "dist-cxx");
    log.info("from a release artifact", rarch::Fields().context(rarch::Context().add("lang", "c++")));
    log.flush(std::chrono::seconds(30));
    std::cout << "c++: ok\n";
}
EOF
cat > "$S/CMakeLists.txt.in" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(rarch_dist_check LANGUAGES @LANGS@)
find_package(rarch_logging @VERSION@ REQUIRED)
message(STATUS "rarch_logging ${rarch_logging_VERSION} from ${rarch_logging_DIR}")
add_executable(app_shared ../main.c)
target_link_libraries(app_shared PRIVATE rarch_logging::rarch_logging)
if(WITH_STATIC)
  add_executable(app_static ../main.c)
  target_link_libraries(app_static PRIVATE rarch_logging::rarch_logging_static)
  add_executable(app_cxx ../main.cpp)
  target_link_libraries(app_cxx PRIVATE rarch_logging::cxx)
endif()
EOF
cmake_project() { # cmake_project DIR LANGS WITH_STATIC PREFIX_PATH
	mkdir -p "$1"
	sed -e "s/@LANGS@/$2/" -e "s/@VERSION@/${VERSION%.*}/" "$S/CMakeLists.txt.in" > "$1/CMakeLists.txt"
	cmake -S "$1" -B "$1/build" -DWITH_STATIC="$3" -DCMAKE_PREFIX_PATH="$4" \
		-DCMAKE_BUILD_TYPE=Release > "$1/configure.log" || { cat "$1/configure.log"; return 1; }
	grep 'rarch_logging .* from' "$1/configure.log"
	cmake --build "$1/build" -j 2 > "$1/build.log" || { cat "$1/build.log"; return 1; }
}

TARBALL=$DIST/rarch-logging-$VERSION-linux-x86_64.tar.gz
P=$S/opt/rarch-logging       # the tarball's prefix
P2=$S/elsewhere/rarch        # the same prefix, moved

check_tarball_layout() {
	need "$TARBALL"
	[ "$(tar -tzf "$TARBALL" | cut -d/ -f1 | sort -u)" = "rarch-logging-$VERSION-linux-x86_64" ]
	mkdir -p "$P"
	tar -xzf "$TARBALL" -C "$P" --strip-components=1
	local L=$P/lib so=$P/lib/librarch_logging.so.$VERSION f
	for f in lib/librarch_logging.so lib/librarch_logging.so.$MAJOR lib/librarch_logging.so.$VERSION \
		lib/librarch_logging.so.$VERSION.debug lib/librarch_logging.a include/rarch_logging.h \
		include/rarch_logging.hpp include/rarch_logging_macros.h lib/pkgconfig/rarch-logging.pc \
		lib/cmake/rarch_logging/rarch_loggingConfig.cmake \
		lib/cmake/rarch_logging/rarch_loggingConfigVersion.cmake \
		share/gocode/src/rarch-logging/rarchlog/go.mod share/doc/rarch-logging/copyright \
		share/doc/rarch-logging/docs/options.md; do
		[ -e "$P/$f" ] || { echo "the tarball has no $f"; return 1; }
	done
	[ "$(readlink "$L/librarch_logging.so")" = "librarch_logging.so.$MAJOR" ]
	[ "$(readlink "$L/librarch_logging.so.$MAJOR")" = "librarch_logging.so.$VERSION" ]
	readelf -d "$so" | grep "SONAME.*\[librarch_logging.so.$MAJOR\]" >/dev/null
	# Stripped, with a debuglink to the debug file, which has the same build id.
	! has_section "$so" .debug_info || { echo "$so has debug sections"; return 1; }
	! has_section "$so" .symtab || { echo "$so has a symbol table"; return 1; }
	readelf --string-dump=.gnu_debuglink "$so" | grep "librarch_logging.so.$VERSION.debug" >/dev/null
	has_section "$L/librarch_logging.so.$VERSION.debug" .debug_info
	local id1 id2
	id1=$(readelf -n "$so" | sed -n 's/.*Build ID: //p')
	id2=$(readelf -n "$L/librarch_logging.so.$VERSION.debug" | sed -n 's/.*Build ID: //p')
	[ -n "$id1" ]
	[ "$id1" = "$id2" ]
	echo "stripped $(du -h "$so" | cut -f1), debug $(du -h "$so.debug" | cut -f1), static $(du -h "$L/librarch_logging.a" | cut -f1)"
	# Relocatable: nothing names the place it was built in.
	! grep -rl -e "$ROOT" -e "/target/" "$L/pkgconfig" "$L/cmake" || { echo "absolute paths in the config files"; return 1; }
}

check_tarball_cli() {
	need "$TARBALL"
	[ -d "$P" ] || { echo "the tarball was not unpacked"; return 1; }
	! has_section "$P/bin/rarch-logging" .debug_info || { echo "bin/rarch-logging is not stripped"; return 1; }
	"$P/bin/rarch-logging" --version
	run dist-tar-cli "$P/bin/rarch-logging" check --service dist-tar-cli
}

check_tarball_pkgconfig() {
	need "$TARBALL"
	[ -d "$P" ] || { echo "the tarball was not unpacked"; return 1; }
	export PKG_CONFIG_PATH=$P/lib/pkgconfig
	[ "$(pkg-config --modversion rarch-logging)" = "$VERSION" ]
	pkg-config --cflags --libs rarch-logging
	# shellcheck disable=SC2046
	cc -std=c11 -Wall -Wextra -Werror "$S/main.c" $(pkg-config --cflags --libs rarch-logging) \
		-Wl,-rpath,"$P/lib" -o "$S/app_pc"
	uses_lib "$S/app_pc" "$P/lib"
	run dist-tar-pkgconfig "$S/app_pc" dist-tar-pkgconfig
}

check_tarball_cmake() {
	need "$TARBALL"
	[ -d "$P" ] || { echo "the tarball was not unpacked"; return 1; }
	# The prefix works wherever it is: move it first.
	mkdir -p "$(dirname "$P2")"
	mv "$P" "$P2"
	cmake_project "$S/cmake-tar" "C CXX" ON "$P2"
	local b=$S/cmake-tar/build
	uses_lib "$b/app_shared" "$P2/lib"
	! ldd "$b/app_static" | grep librarch_logging >/dev/null || { echo "app_static loads the shared library"; return 1; }
	run dist-tar-cmake "$b/app_shared" dist-tar-cmake
	run dist-tar-cmake-static "$b/app_static" dist-tar-cmake-static
	run dist-tar-cmake-cxx "$b/app_cxx" dist-tar-cmake-cxx
}

check_tarball_go() {
	need "$TARBALL"
	command -v go >/dev/null 2>&1 || { echo "go is not installed"; exit 77; }
	[ -d "$P2" ] || { echo "the tarball's prefix is not there (check_tarball_cmake)"; return 1; }
	local d=$S/goapp mod=$P2/share/gocode/src/rarch-logging/rarchlog
	mkdir -p "$d"
	# The commands of bindings/go/README.md, "Using it from another module".
	(cd "$d" && GOTOOLCHAIN=local go mod init example.com/billing 2>/dev/null &&
		go mod edit -require=rarch-logging/rarchlog@v0.0.0 -replace=rarch-logging/rarchlog="$mod")
	cat > "$d/main.go" <<'EOF'
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"rarch-logging/rarchlog"
)

func main() {
	lg, err := rarchlog.New("dist-tar-go", "", rarchlog.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer lg.Close()
	if err := lg.Info("from a release artifact", rarchlog.Fields{Context: map[string]any{"lang": "go"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lg.Flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("go: ok, library", rarchlog.Version())
}
EOF
	# `go mod tidy`, as the README says: the package requires go.opentelemetry.io/otel/trace.
	(cd "$d" && GOTOOLCHAIN=local go mod tidy)
	(cd "$d" && PKG_CONFIG_PATH=$P2/lib/pkgconfig CGO_ENABLED=1 GOTOOLCHAIN=local \
		CGO_LDFLAGS="-Wl,-rpath,$P2/lib" go build -o "$S/app_go" .)
	uses_lib "$S/app_go" "$P2/lib"
	run dist-tar-go "$S/app_go"
}

DEBS=("$DIST/librarch-logging0_${VERSION}_amd64.deb" "$DIST/librarch-logging-dev_${VERSION}_amd64.deb"
	"$DIST/librarch-logging0-dbgsym_${VERSION}_amd64.deb")
R=$S/debroot
check_deb() {
	need "${DEBS[@]}"
	command -v dpkg-deb >/dev/null 2>&1 || { echo "dpkg-deb is not installed"; exit 77; }
	local deb
	for deb in "${DEBS[@]}"; do
		[ "$(dpkg-deb -f "$deb" Version)" = "$VERSION" ]
		[ "$(dpkg-deb -f "$deb" Architecture)" = amd64 ]
		echo "$(dpkg-deb -f "$deb" Package): Depends: $(dpkg-deb -f "$deb" Depends)"
		dpkg -x "$deb" "$R"
	done
	dpkg-deb -I "${DEBS[0]}" shlibs | grep "^librarch_logging $MAJOR librarch-logging0" >/dev/null
	dpkg-deb -I "${DEBS[0]}" triggers | grep ldconfig >/dev/null
	local L=$R/usr/lib/$TRIPLET id f
	for f in "$L/librarch_logging.so.$VERSION" "$L/librarch_logging.so.$MAJOR" "$L/librarch_logging.so" \
		"$L/librarch_logging.a" "$R/usr/include/rarch_logging.h" "$L/pkgconfig/rarch-logging.pc" \
		"$L/cmake/rarch_logging/rarch_loggingConfig.cmake" \
		"$R/usr/share/gocode/src/rarch-logging/rarchlog/go.mod"; do
		[ -e "$f" ] || { echo "the .debs have no ${f#"$R"}"; return 1; }
	done
	# The command line, in a package of its own.
	dpkg -x "$DIST/rarch-logging-tools_${VERSION}_amd64.deb" "$R"
	"$R/usr/bin/rarch-logging" --version
	# The runtime package has only the library (and its docs); the debug file is found by build id.
	! dpkg-deb -c "${DEBS[0]}" | grep -e '\.a$' -e '\.h$' -e '\.pc$' || { echo "runtime package has dev files"; return 1; }
	id=$(readelf -n "$L/librarch_logging.so.$VERSION" | sed -n 's/.*Build ID: //p')
	has_section "$R/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" .debug_info
	# pkg-config as a cross build into a root sees it; the .pc file says /usr as installed.
	grep -q '^prefix=/usr$' "$L/pkgconfig/rarch-logging.pc"
	local flags
	flags=$(env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$L/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$R" \
		PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 \
		pkg-config --cflags --libs rarch-logging)
	echo "pkg-config: $flags"
	# shellcheck disable=SC2086
	cc -std=c11 -Wall -Wextra -Werror "$S/main.c" $flags -Wl,-rpath,"$L" -o "$S/app_deb"
	uses_lib "$S/app_deb" "$L"
	run dist-deb-pkgconfig "$S/app_deb" dist-deb-pkgconfig
	cmake_project "$S/cmake-deb" C OFF "$R/usr"
	grep -q "$L/cmake/rarch_logging" "$S/cmake-deb/configure.log"
	uses_lib "$S/cmake-deb/build/app_shared" "$L"
	run dist-deb-cmake "$S/cmake-deb/build/app_shared" dist-deb-cmake
}

check_wheel() {
	local whl= f
	for f in "$DIST"/redarch_logging_client-"$VERSION"-py3-none-*manylinux_*_x86_64.whl; do
		[ -f "$f" ] && whl=$f
	done
	[ -n "$whl" ] || { echo "no manylinux wheel in $DIST"; exit 77; }
	echo "${whl##*/}"
	python3 -m venv "$S/venv"
	"$S/venv/bin/python" -m pip install -q --disable-pip-version-check "$whl" python-dotenv
	local lib
	lib=$(cd "$S" && "$S/venv/bin/python" -c 'import redarch_logging_client as r; print(r.library_path)')
	case "$lib" in "$S/venv/"*) echo "library: $lib" ;; *) echo "the package loads $lib"; return 1 ;; esac
	# The old client's README example, verbatim (it logs 5 entries to test-service and exits
	# without a flush).
	cp "$ROOT/bindings/python/tests/readme_examples/simple_logger.py" "$S/simple_logger.py"
	expects test-service 5
	(mkdir -p "$S/run/py" && cd "$S/run/py" && "$S/venv/bin/python" "$S/simple_logger.py")
}

check_npm() {
	local tgz=$DIST/rarch-logging-$VERSION.tgz d=$S/npmapp
	need "$tgz"
	command -v npm >/dev/null 2>&1 || { echo "npm is not installed"; exit 77; }
	tar -tzf "$tgz" | grep -x package/prebuilds/linux-x64/librarch_logging.so >/dev/null
	mkdir -p "$d"
	echo '{ "name": "billing", "version": "1.0.0", "private": true }' > "$d/package.json"
	(cd "$d" && npm install --no-audit --no-fund --loglevel=error "$tgz")
	cat > "$d/app.js" <<'EOF'
const { createLogger, libraryPath } = require('rarch-logging');
const log = createLogger({ service: 'dist-npm', loggerName: 'app' });
log.info('from a release artifact', { context: { lang: 'node' } });
log.flush(30000).then(() => console.log('node: ok, library ' + libraryPath()));
EOF
	local out
	out=$(cd "$d" && node app.js)
	echo "$out"
	expects dist-npm 1
	case "$out" in *"library $d/node_modules/rarch-logging/prebuilds/linux-x64/librarch_logging.so") ;;
	*) echo "the package did not load its bundled library"; return 1 ;; esac
}

check_delivered() {
	local stats entries svc want n total=0 bad=0
	[ -s "$S/expected" ] || { echo "no program ran"; return 1; }
	stats=$(get /stats)
	entries=$(get /entries)
	echo "receiver: $stats"
	while read -r svc want; do
		n=$(printf '%s\n' "$entries" | grep -c "\"service\":\"$svc\"" || true)
		echo "$svc: $n entries, want $want"
		[ "$n" -eq "$want" ] || bad=1
		total=$((total + n))
	done < <(awk '{ n[$1] += $2 } END { for (s in n) print s, n[s] }' "$S/expected" | sort)
	[ "$bad" -eq 0 ]
	python3 -c 'import json, sys; s = json.loads(sys.argv[1]); sys.exit(0 if s["accepted"] == int(sys.argv[2]) and s["unauthorized"] == 0 and s["bad_entries"] == 0 else 1)' "$stats" "$total"
}

echo "check-dist: $DIST, version $VERSION, scratch $S, receiver $BASE"
check "tarball: layout, stripped library, debuglink, relocatable config" check_tarball_layout
check "tarball: bin/rarch-logging check delivers" check_tarball_cli
check "tarball: C program with pkg-config" check_tarball_pkgconfig
check "tarball (prefix moved): C, static C and C++ programs with CMake" check_tarball_cmake
check "tarball: Go program (replace => share/gocode, pkg-config)" check_tarball_go
check ".deb: dpkg -x into a root, C program with pkg-config and CMake" check_deb
check "wheel: pip install into a fresh venv, the old client's README example" check_wheel
check "npm tarball: npm install into a fresh project, a script" check_npm
# Only what ran is counted here; a failure above already shows.
check "receiver: every program's entries arrived, none refused" check_delivered
echo "check-dist: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
