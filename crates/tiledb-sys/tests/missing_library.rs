//! Without libtiledb the build stops with one message that says what to run.

use std::process::Command;

#[test]
fn missing_library_names_the_setup_command() {
    let empty = std::env::temp_dir().join(format!("tiledb-sys-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    // A target folder of its own: the build script runs again, and the workspace's build
    // (which holds the real library) is not disturbed.
    let target = std::env::temp_dir().join(format!("tiledb-sys-target-{}", std::process::id()));
    let out = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet", "-p", "tiledb-sys"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TILEDB_LIB_DIR", &empty)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&target);
    let _ = std::fs::remove_dir_all(&empty);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build must fail: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert!(
        errors[0].contains("libtiledb (TileDB 2.30) is missing")
            && errors[0].contains("run `cargo xtask setup`")
            && errors[0].contains("TILEDB_LIB_DIR"),
        "{stderr}"
    );
    // No panic, no backtrace: just cargo's own closing line after ours.
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(errors.len() <= 2, "{stderr}");
}
