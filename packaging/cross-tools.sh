#!/usr/bin/env bash
# Installs what the release builds of `make dist` and `make test-cross` need besides the apt
# packages (those are installed by .ci/run, or by hand: qemu-user-static gcc-aarch64-linux-gnu
# g++-aarch64-linux-gnu libc6-dev-arm64-cross musl-tools):
#   - the Rust standard libraries of the targets (rustup target add);
#   - zig and cargo-zigbuild, from PyPI, in a venv kept between runs (RARCH_CROSS_VENV, default
#     ~/.cache/rarch-logging/cross-venv). zig links the glibc builds against glibc 2.17's
#     symbol versions and the musl build with its own musl and compiler runtime.
# Re-running it is quick (a stamp names the versions installed). Prints nothing when all is there.
set -euo pipefail

VENV=${RARCH_CROSS_VENV:-$HOME/.cache/rarch-logging/cross-venv}
ZIGLANG=0.17.1
ZIGBUILD=0.24.1
TARGETS=(aarch64-unknown-linux-gnu x86_64-unknown-linux-musl)

installed=$(rustup target list --installed)
missing=()
for t in "${TARGETS[@]}"; do
	grep -qx "$t" <<<"$installed" || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "cross-tools: rustup target add ${missing[*]}"
	rustup target add "${missing[@]}" >/dev/null
fi

stamp=$VENV/.rarch-ziglang-$ZIGLANG-cargo-zigbuild-$ZIGBUILD
if [ ! -f "$stamp" ]; then
	echo "cross-tools: ziglang $ZIGLANG and cargo-zigbuild $ZIGBUILD into $VENV"
	[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
		"ziglang==$ZIGLANG" "cargo-zigbuild==$ZIGBUILD"
	touch "$stamp"
fi

absent=()
for c in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64-static musl-gcc; do
	command -v "$c" >/dev/null 2>&1 || absent+=("$c")
done
[ -f /usr/aarch64-linux-gnu/lib/libc.so.6 ] || absent+=("/usr/aarch64-linux-gnu/lib/libc.so.6")
if [ ${#absent[@]} -gt 0 ]; then
	echo "cross-tools: missing ${absent[*]} (apt-get install qemu-user-static gcc-aarch64-linux-gnu" \
		"g++-aarch64-linux-gnu libc6-dev-arm64-cross musl-tools)" >&2
	exit 1
fi
