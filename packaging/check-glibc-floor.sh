#!/usr/bin/env bash
# The glibc floor of the release: every shared library that an artifact ships must load on
# glibc 2.17 (RHEL/CentOS 7, Amazon Linux 2 and later), i.e. need no GLIBC_ symbol version above
# 2.17 (what `objdump -T` shows; read here from the version needs, `readelf -V`); a musl
# library must need no GLIBC_ version at all, and only musl's libc.musl-<arch>.so.1.
#
#   packaging/check-glibc-floor.sh DIST_DIR|FILE.so...
#
# A directory: the libraries inside its tarballs, .debs, wheels and npm tarball (a musl one is
# one whose path says musl). Prints one line per library; exits non-zero if one is above the
# floor, or if a directory holds no library.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=packaging/targets.sh
. "$ROOT/packaging/targets.sh"
[ $# -gt 0 ] || { echo "usage: check-glibc-floor.sh DIST_DIR|FILE.so..." >&2; exit 2; }

S=$(mktemp -d "${TMPDIR:-/tmp}/rarch-glibc-floor.XXXXXX")
trap 'rm -rf "$S"' EXIT

libs=() # "LABEL<TAB>FILE"
for arg in "$@"; do
	if [ -f "$arg" ]; then
		libs+=("$arg	$arg")
		continue
	fi
	[ -d "$arg" ] || { echo "check-glibc-floor: no $arg" >&2; exit 2; }
	n=0
	for a in "$arg"/*.tar.gz "$arg"/*.tgz "$arg"/*.deb "$arg"/*.whl; do
		[ -f "$a" ] || continue
		n=$((n + 1))
		d=$S/$n
		mkdir -p "$d"
		case "$a" in
		*.deb) dpkg-deb -x "$a" "$d" ;;
		*.whl) python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$a" "$d" ;;
		*) tar -xzf "$a" -C "$d" ;;
		esac
		while IFS= read -r f; do
			libs+=("${a##*/}:${f#"$d"/}	$f")
		done < <(find "$d" -type f -name '*.so*' ! -name '*.debug' ! -path '*/debug/*' | sort)
	done
done
[ ${#libs[@]} -gt 0 ] || { echo "check-glibc-floor: no shared library found in $*" >&2; exit 1; }

# version_gt A B: A > B, as versions
version_gt() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n1)" = "$1" ]; }

bad=0
for entry in "${libs[@]}"; do
	label=${entry%%	*} f=${entry#*	}
	needs=$(readelf -V -W "$f" | sed -n 's/.*Name: GLIBC_\([0-9.]*\) .*/\1/p' | sort -uV)
	top=$(printf '%s\n' "$needs" | tail -n1)
	case "$label" in
	*musl*)
		libc=$(readelf -d -W "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ' -)
		if [ -n "$top" ]; then
			echo "FAIL $label: a musl library needs GLIBC_$top"
			bad=1
		elif ! [[ "$libc" =~ ^libc\.musl-[a-z0-9_]+\.so\.1$ ]]; then
			echo "FAIL $label: a musl library needs $libc (not musl's libc.musl-<arch>.so.1 alone)"
			bad=1
		else
			echo "ok   $label: musl, needs $libc"
		fi
		;;
	*)
		if [ -z "$top" ]; then
			echo "FAIL $label: needs no GLIBC_ version (not a glibc library?)"
			bad=1
		elif version_gt "$top" "$GLIBC_FLOOR"; then
			above=$(printf '%s\n' "$needs" | while read -r v; do version_gt "$v" "$GLIBC_FLOOR" && printf 'GLIBC_%s ' "$v"; done)
			echo "FAIL $label: needs ${above}(above the floor, GLIBC_$GLIBC_FLOOR)"
			bad=1
		else
			echo "ok   $label: needs at most GLIBC_$top"
		fi
		;;
	esac
done
exit $bad
