#!/bin/sh
# Installs the built library into a tree: the stripped shared library with its soname links and
# its debug symbols in a separate file, the static library (debug sections stripped), the
# headers, the pkg-config file and the CMake package, and the command line rarch-logging
# (PREFIX/bin, stripped) when it was built beside the library. Used by `make install` and by
# packaging/dist.sh (the tarball and the .deb); re-running it over the same tree is harmless.
#
#   packaging/install-tree.sh [options]
#     --lib FILE         the built shared library (default target/release/librarch_logging.so)
#     --static FILE      the built static library (default beside --lib)
#     --destdir DIR      staging root prepended to every path (default: $DESTDIR, else none)
#     --prefix DIR       (default /usr/local)  --libdir DIR (default PREFIX/lib)
#     --incdir DIR       (default PREFIX/include)
#     --version X.Y.Z    (default: Cargo.toml's)
#     --relocatable      the .pc file finds its prefix from its own place (${pcfiledir}); the
#                        CMake package always does when libdir and incdir are under the prefix
#     --debug beside|build-id|none
#                        beside: LIBDIR/librarch_logging.so.X.Y.Z.debug (default; gdb looks
#                        there through the debuglink); build-id: PREFIX/lib/debug/.build-id/
#                        xx/yyyy.debug, as Debian's -dbgsym packages; none: no debug file
#     --lib-mode MODE    mode of the shared library (default 0755; Debian wants 0644)
# OBJCOPY and STRIP name the binutils (default objcopy, strip; aarch64-linux-gnu-objcopy and
# aarch64-linux-gnu-strip for an aarch64 library).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=$ROOT/target/release/librarch_logging.so
STATIC=
DEST=${DESTDIR:-}
PREFIX=/usr/local
LIBDIR=
INCDIR=
VERSION=
RELOC=no
DEBUG=beside
LIBMODE=0755
OBJCOPY=${OBJCOPY:-objcopy}
STRIP=${STRIP:-strip}

while [ $# -gt 0 ]; do
	case "$1" in
	--lib) LIB=$2; shift 2 ;;
	--static) STATIC=$2; shift 2 ;;
	--destdir) DEST=$2; shift 2 ;;
	--prefix) PREFIX=$2; shift 2 ;;
	--libdir) LIBDIR=$2; shift 2 ;;
	--incdir) INCDIR=$2; shift 2 ;;
	--version) VERSION=$2; shift 2 ;;
	--relocatable) RELOC=yes; shift ;;
	--debug) DEBUG=$2; shift 2 ;;
	--lib-mode) LIBMODE=$2; shift 2 ;;
	*) echo "install-tree.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

# No trailing slashes ("/" as the prefix becomes "", which is what the joins below want).
strip_slash() { printf '%s' "$1" | sed 's|/*$||'; }
PREFIX=$(strip_slash "$PREFIX")
LIBDIR=$(strip_slash "${LIBDIR:-$PREFIX/lib}")
INCDIR=$(strip_slash "${INCDIR:-$PREFIX/include}")
DEST=$(strip_slash "$DEST")
[ -n "$VERSION" ] || VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
MAJOR=${VERSION%%.*}
[ -n "$STATIC" ] || STATIC=$(dirname "$LIB")/librarch_logging.a
[ -f "$LIB" ] || { echo "install-tree.sh: no $LIB (make lib)" >&2; exit 1; }
for tool in "$OBJCOPY" "$STRIP"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "install-tree.sh: $tool (binutils) is needed" >&2; exit 1; }
done

REAL=librarch_logging.so.$VERSION
L=$DEST$LIBDIR
I=$DEST$INCDIR
install -d "$L" "$I" "$L/pkgconfig" "$L/cmake/rarch_logging"

# The shared library: debug sections into their own file, then stripped as dh_strip does
# (--strip-unneeded, no .comment), with a debuglink naming the debug file.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rarch-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
case "$DEBUG" in
beside) dbg=$L/$REAL.debug ;;
build-id)
	id=$(readelf -n "$LIB" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n1)
	[ -n "$id" ] || { echo "install-tree.sh: $LIB has no build id" >&2; exit 1; }
	dbg=$DEST$PREFIX/lib/debug/.build-id/$(printf %s "$id" | cut -c1-2)/$(printf %s "$id" | cut -c3-).debug
	;;
none) dbg= ;;
*) echo "install-tree.sh: --debug beside|build-id|none" >&2; exit 2 ;;
esac
"$OBJCOPY" --strip-unneeded --remove-section=.comment "$LIB" "$tmp/$REAL"
if [ -n "$dbg" ]; then
	install -d "$(dirname "$dbg")"
	"$OBJCOPY" --only-keep-debug --compress-debug-sections=zlib "$LIB" "$tmp/debug"
	install -m 0644 "$tmp/debug" "$dbg"
	# The link holds the debug file's name and CRC; gdb looks beside the library, in .debug/
	# and under /usr/lib/debug (and by build id).
	(cd "$(dirname "$dbg")" && "$OBJCOPY" --add-gnu-debuglink="$(basename "$dbg")" "$tmp/$REAL")
fi
install -m "$LIBMODE" "$tmp/$REAL" "$L/$REAL"
ln -sfn "$REAL" "$L/librarch_logging.so.$MAJOR"
ln -sfn "librarch_logging.so.$MAJOR" "$L/librarch_logging.so"

# The static library without its debug sections (65 MB instead of 124), deterministic members.
if [ -f "$STATIC" ]; then
	"$STRIP" --strip-debug --enable-deterministic-archives --remove-section=.comment \
		-o "$tmp/librarch_logging.a" "$STATIC"
	install -m 0644 "$tmp/librarch_logging.a" "$L/librarch_logging.a"
fi

# The operator's command line (rarch-logging), stripped, when it was built beside the library.
BIN=$(dirname "$LIB")/rarch-logging
if [ -f "$BIN" ]; then
	install -d "$DEST$PREFIX/bin"
	strip --strip-unneeded --remove-section=.comment -o "$tmp/rarch-logging" "$BIN"
	install -m 0755 "$tmp/rarch-logging" "$DEST$PREFIX/bin/rarch-logging"
fi

install -m 0644 "$ROOT/include/rarch_logging.h" "$I/rarch_logging.h"
for h in "$ROOT"/bindings/c/*.h "$ROOT"/bindings/c/*.hpp; do
	[ -f "$h" ] && install -m 0644 "$h" "$I/"
done

# Paths of the config files: relative to the prefix where they can be.
rel() { # rel DIR: DIR below PREFIX ("lib", "lib/x86_64-linux-gnu"), or empty
	case "$1" in "$PREFIX"/*) printf '%s' "${1#"$PREFIX"/}" ;; *) ;; esac
}
ups() { # ups PATH: "../" once per component of PATH
	printf '%s' "$1" | tr '/' '\n' | sed 's|.*|..|' | paste -sd/ -
}
librel=$(rel "$LIBDIR")
increl=$(rel "$INCDIR")

if [ "$RELOC" = yes ] && [ -n "$librel" ] && [ -n "$increl" ]; then
	pc_prefix="\${pcfiledir}/$(ups "$librel/pkgconfig")"
else
	pc_prefix=$PREFIX
fi
if [ -n "$librel" ]; then pc_libdir="\${prefix}/$librel"; else pc_libdir=$LIBDIR; fi
if [ -n "$increl" ]; then pc_incdir="\${prefix}/$increl"; else pc_incdir=$INCDIR; fi
sed -e "s|@PREFIX@|$pc_prefix|g" -e "s|@LIBDIR@|$pc_libdir|g" -e "s|@INCDIR@|$pc_incdir|g" \
	-e "s|@VERSION@|$VERSION|g" "$ROOT/packaging/rarch-logging.pc.in" > "$tmp/rarch-logging.pc"
install -m 0644 "$tmp/rarch-logging.pc" "$L/pkgconfig/rarch-logging.pc"

# The CMake package finds the include directory from its own place (LIBDIR/cmake/rarch_logging)
# when both directories are under the prefix; else it uses the absolute one given here.
if [ -n "$librel" ] && [ -n "$increl" ]; then
	cm_inc="\${CMAKE_CURRENT_LIST_DIR}/$(ups "$librel/cmake/rarch_logging")/$increl"
else
	cm_inc=$INCDIR
fi
for f in "$ROOT"/packaging/cmake/*.cmake; do
	sed -e "s|@VERSION@|$VERSION|g" -e "s|@MAJOR@|$MAJOR|g" -e "s|@INCDIR@|$INCDIR|g" \
		-e "s|@CMAKE_INCDIR@|$cm_inc|g" "$f" > "$tmp/$(basename "$f")"
	install -m 0644 "$tmp/$(basename "$f")" "$L/cmake/rarch_logging/$(basename "$f")"
done
echo "install-tree.sh: installed $REAL (stripped$([ -n "$dbg" ] && echo ", debug symbols in ${dbg#"$DEST"}")) into ${DEST:+$DEST:}$LIBDIR"
