//! Gives the `rechunk` binary an rpath to libtiledb (found by tiledb-sys), so it runs outside
//! cargo without LD_LIBRARY_PATH.

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_TILEDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_TILEDB_LIB_DIR") {
        println!("cargo::rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
