//! Gives the extension module an rpath to libtiledb (found by tiledb-sys), so that a wheel
//! built here imports without LD_LIBRARY_PATH; `cargo xtask wheel` then bundles the library
//! into the wheel (auditwheel rewrites the rpath to the bundled copy).

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_TILEDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_TILEDB_LIB_DIR") {
        println!("cargo::rustc-link-arg-cdylib=-Wl,-rpath,{dir}");
    }
}
