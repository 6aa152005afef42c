//! Tests and examples of this crate run against libtiledb from the folder `tiledb-sys` found
//! (passed on as `DEP_TILEDB_LIB_DIR`), through an rpath: `cargo::rustc-link-arg` of
//! `tiledb-sys` reaches only its own targets.

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_TILEDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_TILEDB_LIB_DIR") {
        println!("cargo::rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
