#!/usr/bin/env bash
# The release libraries of `make dist`, one per platform, each linked by cargo-zigbuild:
#
#   packaging/cross-build.sh [KEY...]     (KEY: x86_64 aarch64 x86_64-musl; default all)
#
# into target/<rust target>/release/librarch_logging.{so,a} (and, for x86_64, the
# command line rarch-logging beside it). The glibc targets are linked
# against glibc 2.17's symbol versions (x86_64-unknown-linux-gnu.2.17); the musl one is a
# cdylib, so musl's static C runtime is turned off for it (-C target-feature=-crt-static, given
# through the target's own RUSTFLAGS so the host's build scripts are left alone). `make dist`
# and `make test-cross` both call it: cargo's fingerprints make the second call a no-op, so each
# platform is built once. Needs packaging/cross-tools.sh's tools.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=packaging/targets.sh
. packaging/targets.sh
command -v cargo-zigbuild >/dev/null 2>&1 || {
	echo "cross-build: cargo-zigbuild is not installed (bash packaging/cross-tools.sh)" >&2
	exit 1
}
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
# ring's build script reruns when SOURCE_DATE_EPOCH changes (dist.sh sets it to the last
# commit's time for the archives), and all that depends on ring is rebuilt after it: the
# build leaves it out, so that one build serves every commit and every caller.
unset SOURCE_DATE_EPOCH
[ $# -gt 0 ] || set -- $DIST_TARGETS_ALL
for key in "$@"; do
	target_vars "$key"
	t0=$SECONDS
	# The operator's command line ships in the x86_64 glibc tarball and .deb.
	bins=()
	[ "$key" != x86_64 ] || bins=(--bin rarch-logging)
	cargo zigbuild --quiet --release --lib "${bins[@]}" --target "$T_ZIG"
	echo "cross-build: $key: target/$T_RUST/release/librarch_logging.so ($((SECONDS - t0)) s)"
done
