//! `az://` as users meet it, against Azurite (Microsoft's Azure Blob Storage emulator, which
//! `cargo xtask setup` installs into `.tools/azurite`): a Zarr array written into a container
//! rechunks from there into the same container through scratch in it, and into a local folder
//! (download and rechunk); both read back identical to the source, the source's blobs are
//! untouched and no scratch is left.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Azurite's blob service on a free port of 127.0.0.1 with its data in a temporary folder,
/// container `data` created; stopped on drop.
struct Azurite {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Azurite {
        let program = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(".tools/azurite/node_modules/.bin/azurite-blob");
        assert!(
            program.exists(),
            "{} is missing: run `cargo xtask setup` (or `cargo xtask test`) to install Azurite",
            program.display()
        );
        let port = python::free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(&program)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let azurite = Azurite {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        python::wait_for_port(port, "Azurite");
        azurite.blobs(&["create", "data"]);
        azurite
    }

    /// Runs `tests/python/azure_blobs.py COMMAND ENDPOINT ARGS...`; its output lines before `ok`.
    fn blobs(&self, command_and_args: &[&str]) -> Vec<String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/azure_blobs.py");
        let (command, args) = command_and_args.split_first().unwrap();
        let out = Command::new(python::python())
            .arg(&script)
            .arg(command)
            .arg(&self.endpoint)
            .args(args)
            .output()
            .expect("run python");
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(
            out.status.success() && lines.last().is_some_and(|l| l == "ok"),
            "azure_blobs.py {command_and_args:?}: {lines:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines[..lines.len() - 1].to_vec()
    }

    /// Blobs of container `data` under `prefix`: name, size and MD5 each.
    fn listing(&self, prefix: &str) -> Vec<String> {
        self.blobs(&["list", "data", prefix])
    }

    /// `rechunk ARGS` with the emulator as Azure (object_store's emulator settings).
    fn rechunk(&self, args: &[&str]) -> std::process::Output {
        rechunk_env(
            args,
            &[
                ("AZURE_STORAGE_USE_EMULATOR", "true"),
                ("AZURITE_BLOB_STORAGE_URL", &self.endpoint),
            ],
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw source of random float32 values (`tas`, 400 x 192 x 192 in (1, 192, 192) chunks, 56 MiB),
/// and the same written to `az://data/in.zarr`.
fn source(azurite: &Azurite, dir: &std::path::Path) -> String {
    let raw = write_tas(&dir.join("tas.raw"), &[400, 192, 192], &[1, 192, 192]);
    let out = azurite.rechunk(&[&raw, "az://data/in.zarr", "--chunks", "time=1", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    raw
}

#[test]
fn az_to_az_through_az_scratch_in_two_stages_is_identical_and_leaves_no_scratch() {
    let azurite = Azurite::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = source(&azurite, dir.path());
    let source_blobs = azurite.listing("in.zarr/");
    assert!(source_blobs.len() > 400, "{source_blobs:?}");
    let args = [
        "az://data/in.zarr",
        "az://data/out.zarr",
        "--chunks",
        "time=400,lat=16,lon=16",
        "--scratch",
        "az://data/scratch",
        "--max-mem",
        // The process holds 85-100 MiB itself (more on a busy machine once): what is left
        // for data is less than the array either way, and never below what a task needs.
        "128MiB",
    ];
    let plan = azurite.rechunk(&[&["plan"], &args[..], &["--json"]].concat());
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        plan["arrays"][0]["plan"]["stages"].as_array().map(Vec::len),
        Some(2),
        "a 56 MiB array under --max-mem 128MiB should pass through the scratch: {}",
        plan["arrays"][0]["estimate"]
    );
    let out = azurite.rechunk(&[&args[..], &["-q"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = azurite.rechunk(&["verify", &raw, "az://data/out.zarr"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("identical"), "{}", stdout(&out));
    assert_eq!(
        azurite.listing("in.zarr/"),
        source_blobs,
        "the source changed"
    );
    assert_eq!(
        azurite.listing("scratch"),
        Vec::<String>::new(),
        "scratch left behind"
    );
    let target = azurite.listing("out.zarr/");
    assert!(
        target
            .iter()
            .any(|b| b.starts_with("out.zarr/tas/c/0/11/11 ")),
        "{target:?}"
    );
}

#[test]
fn an_az_source_rechunks_into_a_local_folder() {
    let azurite = Azurite::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = source(&azurite, dir.path());
    let local = dir.path().join("local.zarr");
    let local = local.to_str().unwrap();
    let out = azurite.rechunk(&[
        "az://data/in.zarr",
        local,
        "--chunks",
        "time=-1,lat=24,lon=24",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = azurite.rechunk(&["verify", &raw, local]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("identical"), "{}", stdout(&out));
}
