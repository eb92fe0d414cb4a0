//! Writes include/rarch_logging.h with cbindgen, and sets the soname and the exported symbols
//! of the shared library.

use std::env;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets it");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("cargo sets it");
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets it");

    // The soname carries the ABI major version; only rarch_* symbols are exported.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librarch_logging.so.{major}");
    let map = dir.join("src/exports.map");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
    println!("cargo:rerun-if-changed=src/exports.map");
    // The functions of rarch_log's path are in `.text.hot.rarch_log` sections: kept together in
    // one output section (GNU ld and lld both take this flag), so that a call after a pause
    // touches a few pages of code instead of one or two per function.
    // zig's linker driver (cargo-zigbuild, which `make dist` links the release libraries with)
    // refuses -z flags it does not know, this one included: those builds go without it. It
    // also writes no build id unless asked (Debian's gcc asks for one): the debug files of the
    // release are found by it.
    let zig = env::var("RUSTC_LINKER").is_ok_and(|l| {
        PathBuf::from(l)
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("zigcc"))
    });
    if zig {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--build-id=sha1");
    } else {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,keep-text-section-prefix");
    }
    // cbindgen reads the whole crate (a public constant anywhere goes into the header), so any
    // change under src/ may change the header.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let versions = format!(
        "\n#define RARCH_VERSION_MAJOR {major}\n#define RARCH_VERSION_MINOR {minor}\n#define RARCH_VERSION_PATCH {patch}\n#define RARCH_VERSION \"{version}\"\n"
    );
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut config = config;
    config.after_includes = Some(versions);
    match cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => {
            b.write_to_file(dir.join("include/rarch_logging.h"));
        }
        Err(e) => panic!("cbindgen failed: {e}"),
    }
}
