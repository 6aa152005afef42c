//! Zarr -> Zarr keeps what the user had (issue #13): with no `--codec` or `--zarr-format`, a
//! lone array comes back as a lone array of the same Zarr version whose metadata differs from
//! the source's in the chunks only (codecs and their settings, filters, fill value including
//! `null`, order, dimension separator, attributes; no invented dimension names), a group as a
//! group. Sources are written by zarr-python: the project's fixtures and the read-only real
//! files in `../shared/data/real/zarr/` (read in place).

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::check;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The real Zarr store whose name starts with `id` (`z02`, ...), read in place.
fn real(id: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real/zarr");
    let found = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{id}-")))
        })
        .unwrap_or_else(|| panic!("no {id}-* in {}", dir.display()));
    found.display().to_string()
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The metadata of the lone array at `root`: its version, its array document and (v2) its
/// attributes (`{}` when it has no `.zattrs`). Panics unless `root` is a lone array.
fn lone_array(root: &Path) -> (u8, Value, Value) {
    if let Some(doc) = read_json(&root.join("zarr.json")) {
        assert_eq!(doc["node_type"], "array", "{}: {doc}", root.display());
        assert!(!root.join(".zarray").exists(), "{}", root.display());
        return (3, doc, Value::Null);
    }
    let doc = read_json(&root.join(".zarray"))
        .unwrap_or_else(|| panic!("{} is not a lone Zarr array", root.display()));
    for group_key in [".zgroup", ".zmetadata"] {
        assert!(
            !root.join(group_key).exists(),
            "{}: a lone array got a {group_key}",
            root.display()
        );
    }
    let attrs = read_json(&root.join(".zattrs")).unwrap_or_else(|| json!({}));
    (2, doc, attrs)
}

/// Every key of both documents is equal but `skip`.
fn same_but(what: &str, a: &Value, b: &Value, skip: &[&str]) {
    let empty = Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    for key in a.keys().chain(b.keys()) {
        if skip.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(a.get(key), b.get(key), "{what}: `{key}` differs");
    }
}

/// DST is a lone array of SRC's version whose metadata is SRC's but for its chunk shape,
/// which is `chunks` (and, for sharded v3 output, its shards and sharding codec).
fn assert_kept(src: &str, dst: &str, chunks: &[u64]) {
    let (format_a, a, attrs_a) = lone_array(Path::new(src));
    let (format_b, b, attrs_b) = lone_array(Path::new(dst));
    assert_eq!(format_a, format_b, "{dst}: Zarr version");
    if format_a == 2 {
        same_but(dst, &a, &b, &["chunks"]);
        assert_eq!(b["chunks"], json!(chunks), "{dst}: chunks");
        assert_eq!(attrs_a, attrs_b, "{dst}: attributes");
    } else {
        same_but(dst, &a, &b, &["chunk_grid"]);
        same_but(dst, &a["chunk_grid"], &b["chunk_grid"], &["configuration"]);
        assert_eq!(
            b.pointer("/chunk_grid/configuration/chunk_shape"),
            Some(&json!(chunks)),
            "{dst}: chunks"
        );
    }
}

/// `rechunk inspect` of SRC and DST differ only in the location, the array's name (a lone
/// array is named after its folder) and the chunks; both name the Zarr version.
fn assert_inspect_differs_in_chunks(src: &str, dst: &str, version: u8) {
    let name = |p: &str| {
        let last = Path::new(p)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        last.strip_suffix(".zarr").unwrap_or(&last).to_string()
    };
    let (a, b) = (ok(&["inspect", src]), ok(&["inspect", dst]));
    let want = format!("  format: zarr v{version} array");
    assert!(a.lines().any(|l| l == want), "{want} missing:\n{a}");
    let b = b.replace(&format!("  {} ", name(dst)), &format!("  {} ", name(src)));
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().skip(1).collect(), b.lines().skip(1).collect());
    assert_eq!(
        a.len(),
        b.len(),
        "inspect texts:\n{}\n--\n{}",
        a.join("\n"),
        b.join("\n")
    );
    let without_chunks = |l: &str| -> String {
        match l.find(", chunks (") {
            Some(i) => {
                let rest = &l[i + ", chunks (".len()..];
                format!("{}{}", &l[..i], &rest[rest.find(')').unwrap() + 1..])
            }
            None => l.to_string(),
        }
    };
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            without_chunks(x),
            without_chunks(y),
            "inspect of {src} and {dst}"
        );
    }
    assert_ne!(a, b, "the chunks should differ");
}

fn shape_arg(chunks: &[u64]) -> String {
    chunks
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// zarr-python 2's python: `RECHUNKER_PYTHON_ZARR2`, else `.venv-zarr2/bin/python` (zarr 2 and
/// 3 cannot share a venv; `cargo xtask setup` makes both).
fn python_zarr2() -> PathBuf {
    let path = std::env::var_os("RECHUNKER_PYTHON_ZARR2")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-zarr2/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`) to install zarr-python 2",
        path.display()
    );
    path
}

/// Runs `tests/python/zarr2_check.py args...` with zarr-python 2; fails unless it says ok.
fn check_zarr2(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/zarr2_check.py");
    let out = std::process::Command::new(python_zarr2())
        .arg(&script)
        .args(args)
        .output()
        .expect("run zarr-python 2");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("ok"),
        "zarr2_check.py {args:?} failed:\n{stdout}\n{stderr}"
    );
}

/// Rechunks the lone array SRC with no codec options and checks everything the issue asks;
/// a v2 array is also opened by zarr-python 2.
fn rechunk_and_check(src: &str, dst: &str, chunks: &[u64]) {
    ok(&[src, dst, "--chunks", &shape_arg(chunks), "-q"]);
    assert_kept(src, dst, chunks);
    ok(&["verify", src, dst]);
    check("zarr_check.py", &["array", src, dst, &shape_arg(chunks)]);
    let (version, _, _) = lone_array(Path::new(src));
    if version == 2 {
        check_zarr2(&["array", src, dst, &shape_arg(chunks)]);
    }
    assert_inspect_differs_in_chunks(src, dst, version);
}

/// What zarr-python 2 writes with its defaults (blosc lz4 + shuffle) comes back as it was, but
/// for the chunks: a lone array as a lone array zarr-python 2 opens, a consolidated group (with
/// a subgroup, an uncompressed and a zlib array) as a group with the same arrays and attributes.
#[test]
fn zarr_python2_arrays_and_groups_come_back_for_zarr_python2() {
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n).display().to_string();
    let (array, group) = (out("zp2-array.zarr"), out("zp2-group.zarr"));
    check_zarr2(&["make-array", &array]);
    check_zarr2(&["make-group", &group]);
    rechunk_and_check(&array, &out("zp2-array-out.zarr"), &[48, 5]);
    let (_, doc, _) = lone_array(&dir.path().join("zp2-array-out.zarr"));
    assert_eq!(
        doc["compressor"],
        json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0})
    );

    let group_out = out("zp2-group-out.zarr");
    ok(&[&group, &group_out, "--chunks", "time=48,lat=10", "-q"]);
    ok(&["verify", &group, &group_out]);
    check_zarr2(&["group", &group, &group_out]);
    let tas = read_json(&dir.path().join("zp2-group-out.zarr/tas/.zarray")).unwrap();
    assert_eq!(tas["chunks"], json!([48, 10]));
    assert_eq!(tas["compressor"]["cname"], "lz4");
    let lat = read_json(&dir.path().join("zp2-group-out.zarr/lat/.zarray")).unwrap();
    assert_eq!(lat["compressor"], json!({"id": "zlib", "level": 4}));
    assert!(dir
        .path()
        .join("zp2-group-out.zarr/sub/flag/.zarray")
        .is_file());
}

/// NetCDF to Zarr v2 opens in zarr-python 2 with the values netCDF4-python reads (numbers,
/// a packed variable, `char` data as `|S1`, an all-fill chunk of a `fill_value: null` array).
/// Without `--codec`, both versions get the measured default: blosc lz4 5 + shuffle.
#[test]
fn netcdf_to_zarr_v2_reads_in_zarr_python2_with_the_default_codec() {
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n).display().to_string();
    for (name, chunks, skip) in [
        ("classic", "time=2,y=3", ""),
        ("strings", "n=-1,len=2", "station"),
    ] {
        let src = fixture(&format!("netcdf/{name}.nc"));
        let npz = out(&format!("{name}.npz"));
        let mut dump = vec![src.as_str(), npz.as_str()];
        if !skip.is_empty() {
            dump.push(skip);
        }
        check("nc_dump.py", &dump);
        let v2 = out(&format!("{name}-v2.zarr"));
        let mut args = vec![
            src.as_str(),
            v2.as_str(),
            "--chunks",
            chunks,
            "--zarr-format",
            "2",
            "-q",
        ];
        if !skip.is_empty() {
            args.push("--skip-unsupported");
        }
        ok(&args);
        check_zarr2(&["npz", &v2, &npz]);
    }
    let v2_doc = read_json(&dir.path().join("classic-v2.zarr/v_f4/.zarray")).unwrap();
    assert_eq!(
        v2_doc["compressor"],
        json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0})
    );
    let v3 = out("classic-v3.zarr");
    ok(&[
        &fixture("netcdf/classic.nc"),
        &v3,
        "--chunks",
        "time=2",
        "-q",
    ]);
    let v3_doc = read_json(&dir.path().join("classic-v3.zarr/v_f4/zarr.json")).unwrap();
    assert_eq!(
        v3_doc["codecs"][1],
        json!({"name": "blosc", "configuration": {
            "cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 4, "blocksize": 0}})
    );
    check(
        "zarr_check.py",
        &[
            "values",
            &out("classic-v2.zarr/v_f4"),
            &out("classic-v3.zarr/v_f4"),
        ],
    );
}

#[test]
fn lone_arrays_keep_version_codecs_fill_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n).display().to_string();
    // (source, new chunks): v2 blosc lz4 shuffle with `_ARRAY_DIMENSIONS`; v2 blosc zstd
    // bitshuffle order F; v2 zlib 4-d order F; v2 f8 blosc bitshuffle order F (NaN values);
    // v2 big-endian `>f4`; v2 bool without compressor; v3 zstd written by zarr-python 3.0.2 with
    // `storage_transformers`; v3 transpose + blosc.
    let cases: Vec<(String, Vec<u64>)> = vec![
        (fixture("zarr/v2_blosc.zarr"), vec![37, 5]),
        (real("z02"), vec![5, 50, 10]),
        (real("z04"), vec![20, 5, 5, 5]),
        (real("z06"), vec![1000]),
        (real("z26"), vec![2]),
        (real("z08"), vec![33]),
        (real("z20"), vec![10, 2]),
        (real("z14"), vec![1, 3, 3]),
    ];
    for (i, (src, chunks)) in cases.iter().enumerate() {
        rechunk_and_check(src, &out(&format!("o{i}.zarr")), chunks);
    }
    // Written here by zarr-python: `fill_value: null`, "/" separator, no dimension names.
    let made = out("made.zarr");
    check("keep_check.py", &["make-v2", &made]);
    rechunk_and_check(&made, &out("made-out.zarr"), &[3000, 5]);
    let (_, doc, attrs) = lone_array(&dir.path().join("made-out.zarr"));
    assert_eq!(doc["fill_value"], Value::Null);
    assert_eq!(doc["dimension_separator"], "/");
    assert_eq!(
        attrs,
        json!({"units": "K"}),
        "no invented _ARRAY_DIMENSIONS"
    );
    assert!(dir.path().join("made-out.zarr/0/0").is_file());
}

#[test]
fn sharded_sources_keep_inner_codecs_and_shard_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let src = real("z12"); // v3, shards 2x2x2 of 1x1x1 chunks, gzip 5, crc32c index
    let (_, source_doc, _) = lone_array(Path::new(&src));
    let inner = &source_doc["codecs"][0]["configuration"];
    let plain = dir.path().join("plain.zarr").display().to_string();
    ok(&[&src, &plain, "--chunks", "2,4,1", "-q"]);
    let (version, doc, _) = lone_array(Path::new(&plain));
    assert_eq!(version, 3);
    assert_eq!(
        doc["codecs"], inner["codecs"],
        "unsharded, the inner codecs"
    );
    assert_eq!(
        doc["chunk_grid"]["configuration"]["chunk_shape"],
        json!([2, 4, 1])
    );
    same_but(&plain, &source_doc, &doc, &["codecs", "chunk_grid"]);
    ok(&["verify", &src, &plain]);
    check("zarr_check.py", &["array", &src, &plain, "2,4,1"]);

    let sharded = dir.path().join("sharded.zarr").display().to_string();
    ok(&[
        &src, &sharded, "--chunks", "2,2,2", "--shards", "4,4,4", "-q",
    ]);
    let (_, doc, _) = lone_array(Path::new(&sharded));
    let config = &doc["codecs"][0]["configuration"];
    assert_eq!(doc["codecs"][0]["name"], "sharding_indexed");
    assert_eq!(config["chunk_shape"], json!([2, 2, 2]));
    for key in ["codecs", "index_codecs", "index_location"] {
        assert_eq!(config[key], inner[key], "{key}");
    }
    ok(&["verify", &src, &sharded]);
    check(
        "zarr_check.py",
        &["array", &src, &sharded, "2,2,2", "4,4,4"],
    );
}

#[test]
fn codec_and_format_options_still_convert() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("zarr/v2_blosc.zarr");
    // --zarr-format 3 --codec zstd:3: a v3 array with zstd, still lone.
    let v3 = dir.path().join("v3.zarr").display().to_string();
    ok(&[
        &src,
        &v3,
        "--chunks",
        "y=-1,x=5",
        "--zarr-format",
        "3",
        "--codec",
        "zstd:3",
        "-q",
    ]);
    let (version, doc, _) = lone_array(Path::new(&v3));
    assert_eq!(version, 3);
    let codecs = doc["codecs"].as_array().unwrap();
    assert!(
        codecs
            .iter()
            .any(|c| c["name"] == "zstd" && c["configuration"]["level"] == 3),
        "{doc}"
    );
    assert_eq!(doc["dimension_names"], json!(["y", "x"]));
    ok(&["verify", &src, &v3]);
    // v3 spells dimension names and the missing-value marker differently: values only.
    check("zarr_check.py", &["values", &src, &v3]);

    // --codec alone: the source's version, that codec.
    let zstd = dir.path().join("zstd.zarr").display().to_string();
    ok(&[
        &src, &zstd, "--chunks", "y=-1,x=5", "--codec", "zstd:3", "-q",
    ]);
    let (version, doc, _) = lone_array(Path::new(&zstd));
    assert_eq!(version, 2);
    assert_eq!(doc["compressor"], json!({"id": "zstd", "level": 3}));
    check("zarr_check.py", &["array", &src, &zstd, "37,5"]);

    // A v2 array without dimension names gets none invented, codec given or not.
    let z02 = real("z02");
    let out = dir.path().join("z02.zarr");
    ok(&[
        &z02,
        out.to_str().unwrap(),
        "--chunks",
        "5,50,10",
        "--codec",
        "gzip:1",
        "-q",
    ]);
    let (_, _, attrs) = lone_array(&out);
    assert!(attrs.get("_ARRAY_DIMENSIONS").is_none(), "{attrs}");

    // Sharding a v2 array needs the version said.
    let failed = rechunk(&[
        &src,
        dir.path().join("s.zarr").to_str().unwrap(),
        "--chunks",
        "y=-1,x=5",
        "--shards",
        "y=-1,x=10",
    ]);
    assert!(
        !failed.status.success() && stderr(&failed).contains("--zarr-format 3"),
        "{}",
        stderr(&failed)
    );
}

#[test]
fn groups_stay_groups_of_their_version() {
    let dir = tempfile::tempdir().unwrap();
    for (source, version) in [("group_coords_v2.zarr", 2), ("group_coords_v3.zarr", 3)] {
        let src = fixture(&format!("zarr/{source}"));
        let dst = dir.path().join(source);
        let dst_s = dst.display().to_string();
        ok(&[&src, &dst_s, "--chunks", "time=-1,lat=5,lon=6", "-q"]);
        if version == 2 {
            assert!(dst.join(".zgroup").is_file() && dst.join(".zmetadata").is_file());
            assert!(!dst.join("zarr.json").exists());
            let (a, b) = (
                read_json(&Path::new(&src).join("tas/.zarray")).unwrap(),
                read_json(&dst.join("tas/.zarray")).unwrap(),
            );
            same_but(&dst_s, &a, &b, &["chunks"]);
        } else {
            let root = read_json(&dst.join("zarr.json")).unwrap();
            assert_eq!(root["node_type"], "group");
            let (a, b) = (
                read_json(&Path::new(&src).join("tas/zarr.json")).unwrap(),
                read_json(&dst.join("tas/zarr.json")).unwrap(),
            );
            same_but(&dst_s, &a, &b, &["chunk_grid"]);
        }
        let text = ok(&["inspect", &dst_s]);
        assert!(
            text.contains(&format!("format: zarr v{version} group")),
            "{text}"
        );
        check("zarr_check.py", &["identical", &src, &dst_s, "tas=24,5,6"]);
        ok(&["verify", &src, &dst_s]);
    }
    // A v2 group written by xarray/zarr-python 2 with no chunk files at all (every value fill).
    let src = real("z23");
    let dst = dir.path().join("z23.zarr");
    ok(&[
        &src,
        dst.to_str().unwrap(),
        "--chunks",
        "lat=100,lon=100",
        "-q",
    ]);
    assert!(dst.join(".zmetadata").is_file());
    ok(&["verify", &src, dst.to_str().unwrap()]);
}

#[test]
fn lone_targets_resume_overwrite_and_run_from_plan_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.zarr").display().to_string();
    check("keep_check.py", &["make-v2", &src]);
    let dst = dir.path().join("dst.zarr");
    let dst_s = dst.display().to_string();
    let args = [
        src.as_str(),
        dst_s.as_str(),
        "--chunks",
        "3000,5",
        "--min-io",
        "1",
        "-j",
        "2",
        "-q",
    ];
    // Killed in its first task (the array fits in memory: the plan is one task, from memory):
    // no metadata, so nothing looks complete.
    let failed = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(
        !failed.status.success(),
        "the injected failure did not happen"
    );
    assert!(!dst.join(".zarray").exists() && !dst.join(".zattrs").exists());
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    ok(&resumed);
    assert_kept(&src, &dst_s, &[3000, 5]);
    check("zarr_check.py", &["array", &src, &dst_s, "3000,5"]);
    // A finished lone array is replaced with --overwrite, and so is an unfinished one.
    let mut overwrite = args.to_vec();
    overwrite.push("--overwrite");
    ok(&overwrite);
    assert_kept(&src, &dst_s, &[3000, 5]);
    let failed = rechunk_env(&overwrite, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(!failed.status.success());
    ok(&overwrite);
    ok(&["verify", &src, &dst_s]);
    let direct = lone_array(&dst);

    // `plan -o`, every stage from the plan file, finalize: the same array.
    let planned = dir.path().join("planned.zarr");
    let plan = dir.path().join("plan.json").display().to_string();
    ok(&[
        "plan",
        &src,
        planned.to_str().unwrap(),
        "--chunks",
        "3000,5",
        "--min-io",
        "1",
        "-j",
        "2",
        "-o",
        &plan,
    ]);
    let file = read_json(Path::new(&plan)).unwrap();
    let stages = file
        .pointer("/arrays/0/plan/stages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    assert!(stages >= 1, "{file}");
    for stage in 0..stages {
        ok(&["run", "--plan", &plan, "--stage", &stage.to_string(), "-q"]);
    }
    ok(&["finalize", "--plan", &plan]);
    assert_eq!(lone_array(&planned), direct);
    ok(&["verify", &src, planned.to_str().unwrap()]);
}
