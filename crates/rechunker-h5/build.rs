//! Compiles the ISA-L shim (`csrc/isal_shim.c`) when ISA-L's headers are installed (Debian:
//! libisal-dev, which `cargo xtask setup` installs). Without them deflate level 1 falls back to
//! libdeflate, five times slower, and the build says so.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(isal)");
    println!("cargo::rerun-if-changed=csrc/isal_shim.c");
    let mut shim = cc::Build::new();
    shim.file("csrc/isal_shim.c").cargo_warnings(false);
    match shim.try_compile("rechunker_isal_shim") {
        Ok(()) => {
            println!("cargo::rustc-link-lib=isal");
            println!("cargo::rustc-cfg=isal");
        }
        Err(e) => println!(
            "cargo::warning=ISA-L not found (install libisal-dev): deflate level 1 uses libdeflate instead ({e})"
        ),
    }
}
