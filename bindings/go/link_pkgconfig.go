//go:build rarch_pkgconfig

package rarchlog

// With -tags rarch_pkgconfig the package links an installed library (`make install
// PREFIX=...`), found through pkg-config's rarch-logging.pc; set PKG_CONFIG_PATH to
// $PREFIX/lib/pkgconfig for a non-standard prefix, and LD_LIBRARY_PATH (or an rpath in
// CGO_LDFLAGS) if the dynamic linker does not search $PREFIX/lib.

// #cgo pkg-config: rarch-logging
import "C"
