# The platforms `make dist` ships, sourced by packaging/cross-build.sh, dist.sh and
# check-cross.sh. `target_vars KEY` sets, for KEY (x86_64, aarch64 or x86_64-musl):
#   T_ZIG      the target given to cargo-zigbuild (a glibc target names its floor: .2.17)
#   T_RUST     the Rust target (target/T_RUST/release holds the build)
#   T_NAME     the tarball's platform (rarch-logging-V-T_NAME.tar.gz)
#   T_ARCH     the machine (uname -m), T_MACHINE what readelf -h says of it
#   T_LIBC     gnu or musl; T_TRIPLET Debian's multiarch triplet (the .deb's library directory)
#   T_DEBARCH  Debian's architecture (empty: no .deb; Debian has no musl port to install into)
#   T_WHEEL    the wheel's platform tag (auditwheel gives the manylinux alias beside it)
#   T_NPM      the npm package's prebuilds/ directory
#   T_BIN      prefix of the binutils that read and strip the target's objects
#   T_CC, T_CXX  the target's C and C++ compilers (T_CXX empty: none to test with); T_RUN runs
#              its programs
GLIBC_FLOOR=2.17
DIST_TARGETS_ALL="x86_64 aarch64 x86_64-musl"

target_vars() {
	T_BIN=
	T_RUN=
	case "$1" in
	x86_64)
		T_RUST=x86_64-unknown-linux-gnu T_ZIG=x86_64-unknown-linux-gnu.$GLIBC_FLOOR
		T_NAME=linux-x86_64 T_ARCH=x86_64 T_MACHINE="Advanced Micro Devices X86-64" T_LIBC=gnu
		T_TRIPLET=x86_64-linux-gnu T_DEBARCH=amd64 T_WHEEL=manylinux_2_17_x86_64 T_NPM=linux-x64
		T_CC=gcc T_CXX=g++
		;;
	aarch64)
		T_RUST=aarch64-unknown-linux-gnu T_ZIG=aarch64-unknown-linux-gnu.$GLIBC_FLOOR
		T_NAME=linux-aarch64 T_ARCH=aarch64 T_MACHINE=AArch64 T_LIBC=gnu
		T_TRIPLET=aarch64-linux-gnu T_DEBARCH=arm64 T_WHEEL=manylinux_2_17_aarch64 T_NPM=linux-arm64
		T_BIN=aarch64-linux-gnu- T_CC=aarch64-linux-gnu-gcc T_CXX=aarch64-linux-gnu-g++
		T_RUN="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
		;;
	x86_64-musl)
		T_RUST=x86_64-unknown-linux-musl T_ZIG=x86_64-unknown-linux-musl
		T_NAME=linux-x86_64-musl T_ARCH=x86_64 T_MACHINE="Advanced Micro Devices X86-64" T_LIBC=musl
		T_TRIPLET=x86_64-linux-musl T_DEBARCH= T_WHEEL=musllinux_1_2_x86_64 T_NPM=linux-x64-musl
		# No C++ compiler: Debian has no C++ library for musl, and zig's (c++ -target
		# x86_64-linux-musl) links a libc++ that needs musl 1.2.5's statx, above Debian's musl.
		T_CC=musl-gcc T_CXX=
		;;
	*) echo "unknown target $1 (one of: $DIST_TARGETS_ALL)" >&2; return 1 ;;
	esac
}

# The venv of packaging/cross-tools.sh (zig, cargo-zigbuild) goes first on PATH.
RARCH_CROSS_VENV=${RARCH_CROSS_VENV:-$HOME/.cache/rarch-logging/cross-venv}
case ":$PATH:" in *":$RARCH_CROSS_VENV/bin:"*) ;; *) PATH=$RARCH_CROSS_VENV/bin:$PATH ;; esac
export PATH
