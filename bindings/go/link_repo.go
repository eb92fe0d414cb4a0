//go:build !rarch_pkgconfig

package rarchlog

// By default the package links the library built in this repository (`make lib` at the repo
// root makes target/release/librarch_logging.so and its soname link librarch_logging.so.0).
// The rpath lets binaries find it without LD_LIBRARY_PATH. Build with -tags rarch_pkgconfig
// to use an installed copy found by pkg-config instead (see link_pkgconfig.go).

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -lrarch_logging -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
