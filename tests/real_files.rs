//! Files written by other software (`../shared/data/real/`, read in place, never copied): what
//! rechunk cannot carry yet is refused in one line that names the variable and the option, and
//! `--skip-unsupported` converts the rest, listing each variable it leaves out.

mod common;
#[path = "common/python.rs"]
mod python;

use common::*;
use python::python;
use rechunker_core::DataType;
use std::path::PathBuf;

/// A file of the shared collection of real files (see its README).
fn real(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/real")
        .join(path);
    assert!(
        p.exists(),
        "{} is missing: the real files live in ../shared/data/real beside the project",
        p.display()
    );
    p.display().to_string()
}

/// `file` is refused naming `variable` and `--skip-unsupported`; with the option it converts,
/// warning once for each of `skipped`, and the output holds the same values as the source
/// without them.
fn refused_then_skipped(file: &str, chunks: &str, variable: &str, skipped: &[&str]) {
    let src = real(file);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr").display().to_string();
    let out = rechunk(&[&src, &dst, "--chunks", chunks]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{file} should be refused");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].contains(&format!("`{variable}`"))
            && lines[0].contains("--skip-unsupported")
            && lines[0].contains(file.rsplit('/').next().unwrap()),
        "{err}"
    );
    assert!(
        !std::path::Path::new(&dst).exists(),
        "a refused run wrote {dst}"
    );

    let out = rechunk(&[&src, &dst, "--chunks", chunks, "--skip-unsupported", "-q"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for v in skipped {
        assert_eq!(
            err.lines()
                .filter(|l| l.contains("skipping") && l.contains(&format!("`{v}`")))
                .count(),
            1,
            "one line for `{v}`: {err}"
        );
    }
    let inspect = ok(&["inspect", &dst]);
    for v in skipped {
        assert!(
            !inspect.contains(&format!("  {v} ")),
            "{v} was written: {inspect}"
        );
    }
    ok(&["verify", &src, &dst, "--skip-unsupported"]);
}

#[test]
fn netcdf_char_variables_are_refused_or_skipped() {
    refused_then_skipped(
        "netcdf/nc01-netcdf-c-ref_nctest_classic.nc",
        "rec=-1",
        "charv",
        &["charv", "charvar"],
    );
}

#[test]
fn hdf5_string_datasets_are_refused_or_skipped() {
    refused_then_skipped(
        "hdf5/h13-jhdf-chunked_v4_datasets.hdf5",
        "phony_dim_2=50",
        "btree_v2/string",
        &[
            "btree_v2/string",
            "extensible_array/string",
            "filtered_btree_v2/string",
            "fixed_array/string",
        ],
    );
}

/// The reference reader of each `num` file of the collection (see its README): the format's own
/// Python reader reads the source, zarr-python the conversion (`tests/python/real_check.py`).
/// nc19 is read with h5py, as the README says (netCDF4-python mis-sizes `g2/g3/var2`).
#[rustfmt::skip]
const NUM_FILES: &[(&str, &str)] = &[
    ("netcdf/nc07-netcdf-c-ref_null_byte_padding_test.nc", "netcdf4"),
    ("netcdf/nc08-netcdf4python-goes16-Cloud_Top_Height.nc", "netcdf4"),
    ("netcdf/nc10-netcdf4python-issue672-ascat-l1b.nc", "netcdf4"),
    ("netcdf/nc14-netcdf-c-ref_tst_interops4-bigendian.nc", "netcdf4"),
    ("netcdf/nc19-ncgen-ref_tst_group_data-groups.nc", "h5py"),
    ("netcdf/nc20-ncgen-ref_dimscope-groups-fill.nc", "netcdf4"),
    ("hdf5/h01-pyfive-dataset_datatypes.hdf5", "h5py"),
    ("hdf5/h02-pyfive-compressed.hdf5", "h5py"),
    ("hdf5/h04-pyfive-dim_scales.hdf5", "h5py"),
    ("hdf5/h05-pyfive-resizable.hdf5", "h5py"),
    ("hdf5/h08-jhdf-byteshuffle_compressed_earliest.hdf5", "h5py"),
    ("hdf5/h09-jhdf-fill_value_earliest.hdf5", "h5py"),
    ("hdf5/h16-hdf5_plugins-h5ex_d_zstd.h5", "h5py"),
    ("hdf5/h17-hdf5_plugins-h5repack_layout.h5", "h5py"),
    ("zarr/z02-zarr-python2-fixture-21-5-F-blosc-bitshuffle.zarr", "zarr"),
    ("zarr/z04-zarr-python2-fixture-23-1-F-zlib-4d.zarr", "zarr"),
    ("zarr/z06-zarr-python2-fixture-16-5-f8-nan.zarr", "zarr"),
    ("zarr/z08-zarr-python2-fixture-17-0-bool.zarr", "zarr"),
    ("zarr/z12-zarrita-v3-3d-sharded.zarr", "zarr"),
    ("zarr/z14-zarrita-v3-3d-transpose-F.zarr", "zarr"),
    ("zarr/z16-zarrita-v3-consolidated-group.zarr", "zarr"),
    ("zarr/z20-zarrs-v3_zarr_python-array_zstd.zarr", "zarr"),
    ("zarr/z23-nczarr-ref_power_901_constants-nochunks.zarr", "zarr"),
    ("zarr/z24-nczarr-ref_byte_fill_value_null.zarr", "zarr"),
    ("zarr/z26-zarrita-v2-f4-bigendian.zarr", "zarr"),
    ("tiledb/t01-vectorsearch-siftsmall-queries-f4-colmajor", "tiledb"),
    ("tiledb/t03-vectorsearch-siftsmall-groundtruth-u8", "tiledb"),
    ("tiledb/t04-vectorsearch-bigann10k-partition_indexes-1d", "tiledb"),
];

/// `num` files whose check is not complete yet, with the reason: (file, what is left out).
/// (file, comma-separated groups xarray is not asked to open, why).
const NUM_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "netcdf/nc19-ncgen-ref_tst_group_data-groups.nc",
    "g2/g3",
    "#13.4(d) is not done: the NetCDF source names dimensions by their local name, so `g2/g3/var2(/dim, /g2/dim, dim)` has three dims called `dim` of lengths 4, 2, 3 and xarray refuses the group (values are still checked)",
)];

/// A chunk spec that changes something, from `rechunk inspect --json`: the first dimension of
/// the first array that has one, with half its chunk length (the whole dimension when the chunk
/// is one element). A file of scalars only gets `auto` (`--chunks` is not optional yet).
fn chunks_for(src: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", src]))
        .unwrap_or_else(|e| panic!("inspect --json {src}: {e}"));
    let arrays = json["arrays"].as_array().expect("arrays");
    for a in arrays {
        let (Some(dims), Some(grid)) = (a["dims"].as_array(), a["grid"].as_array()) else {
            continue;
        };
        let (Some(dim), Some(g)) = (dims.first().and_then(|d| d.as_str()), grid.first()) else {
            continue;
        };
        let chunk = g
            .pointer("/regular/chunk")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        return if chunk > 1 {
            format!("{dim}={}", chunk / 2)
        } else {
            format!("{dim}=-1")
        };
    }
    "auto".into()
}

/// Every `num` file converts to Zarr with identical values: `rechunk verify`, and the file
/// format's own Python reader against zarr-python (exact, NaN-aware, byte order aside); xarray
/// opens every group of the output.
#[test]
fn num_files_convert_to_zarr_with_identical_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (file, reader)) in NUM_FILES.iter().enumerate() {
        if let Some((_, _, why)) = NUM_EXCEPTIONS.iter().find(|(f, _, _)| f == file) {
            eprintln!("{file}: not checked in full: {why}");
        }
        let src = real(file);
        let dst = dir.path().join(format!("{i}.zarr")).display().to_string();
        let chunks = chunks_for(&src);
        let out = rechunk(&[&src, &dst, "--chunks", &chunks, "-q"]);
        if !out.status.success() {
            failures.push(format!("{file} --chunks {chunks}: {}", stderr(&out)));
            continue;
        }
        let out = rechunk(&["verify", &src, &dst]);
        if !out.status.success() {
            failures.push(format!("{file}: verify: {}", stderr(&out)));
            continue;
        }
        let skip_groups = NUM_EXCEPTIONS
            .iter()
            .find(|(f, _, _)| f == file)
            .map_or("", |(_, groups, _)| groups);
        let out = std::process::Command::new(python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/real_check.py"))
            .args([reader, &src.as_str(), &dst.as_str(), &skip_groups])
            .output()
            .expect("run python");
        if !out.status.success() || !stdout(&out).contains("ok") {
            failures.push(format!(
                "{file}: {reader}: {}{}",
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The other `refuse` files (nc01 and h13 above): refused in one line that names a variable
/// and `--skip-unsupported`, then converted with that option and verified.
#[test]
fn refuse_files_are_refused_in_one_line_or_skipped() {
    // (file, a variable the refusal names)
    let files = [
        (
            "netcdf/nc03-netcdf-c-ref_nccopy3_subset.nc",
            "albers_conical_equal_area",
        ),
        ("netcdf/nc11-netcdf4python-test_gold.nc", "TIME_UTC"),
        ("netcdf/nc13-netcdf-c-ref_nc_test_netcdf4_4_0.nc", "c"),
        (
            "netcdf/nc15-netcdf-c-ref_tst_irish_rover-enum.nc",
            "in_the_hold_of_the_Irish_Rover",
        ),
        ("hdf5/h21-h5py-compound-dtype-complex.h5", "<c16"),
        (
            "zarr/z11-zarrita-v2-data-group-consolidated.zarr",
            "1d.contiguous.S7",
        ),
        (
            "zarr/z19-zarrita-v3-string-vlen.zarr",
            "z19-zarrita-v3-string-vlen",
        ),
    ];
    // Refuse files this test leaves out, with the reason.
    let exceptions = [(
        "tiledb/t06-tiledb-non_split_coords_v1_4_0-sparse",
        "a sparse array is refused as a whole (one line, but no variable to name and nothing --skip-unsupported could keep)",
    )];
    for (file, why) in exceptions {
        eprintln!("{file}: not checked: {why}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, (file, variable)) in files.iter().enumerate() {
        let src = real(file);
        let dst = dir.path().join(format!("{i}.zarr")).display().to_string();
        let out = rechunk(&[&src, &dst, "--chunks", "auto"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{file} should be refused");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{file}: one line: {err}");
        assert!(
            lines[0].contains(&format!("`{variable}`"))
                && lines[0].contains("--skip-unsupported")
                && lines[0].contains(file.rsplit('/').next().unwrap()),
            "{err}"
        );
        let out = rechunk(&[&src, &dst, "--chunks", "auto", "--skip-unsupported", "-q"]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert!(
            stderr(&out)
                .lines()
                .any(|l| l.contains("skipping") && l.contains(&format!("`{variable}`"))),
            "{file}: {}",
            stderr(&out)
        );
        ok(&["verify", &src, &dst, "--skip-unsupported"]);
    }
}

/// A group with sibling groups, one of which has a subgroup: the consolidated metadata lists
/// each group's children together (sorted keys), so zarr-python 3 and xarray open every group,
/// in Zarr v3 and v2.
#[test]
fn consolidated_metadata_of_nested_groups_opens_in_zarr_python_and_xarray() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("groups.raw");
    write_raw(
        &src,
        &[
            meta("a/x", &["n"], DataType::Int32, &[4], &[4]),
            meta("c/d/y", &["m"], DataType::Int16, &[3], &[3]),
            meta("c/z", &["k"], DataType::Int32, &[5], &[5]),
        ],
    );
    let src = src.display().to_string();
    for format in ["3", "2"] {
        let dst = dir
            .path()
            .join(format!("v{format}.zarr"))
            .display()
            .to_string();
        ok(&[&src, &dst, "--chunks", "n=2", "--zarr-format", format, "-q"]);
        ok(&["verify", &src, &dst]);
        python::check(
            "real_check.py",
            &["groups", &dst, "=a,c", "a=x", "c=d,z", "c/d=y"],
        );
    }
}

/// z24 (NCZarr): a one-byte type spelled `<u1` and `fill_value: null` convert with identical
/// values; its one dimension named twice is chunked by that name along both axes and kept as
/// written (xarray opens it, warning about the repeated name); the stray `.zattrs.~1~` file is
/// ignored. The output spells the type `|u1`, which zarr-python 3 reads.
#[test]
fn nczarr_byte_array_with_null_fill_and_a_repeated_dimension() {
    let src = real("zarr/z24-nczarr-ref_byte_fill_value_null.zarr");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr").display().to_string();
    let inspect = ok(&["inspect", &src]);
    assert!(
        inspect.contains("byt uint8 (_Anonymous_Dim_20, _Anonymous_Dim_20)"),
        "{inspect}"
    );
    ok(&[&src, &dst, "--chunks", "_Anonymous_Dim_20=10", "-q"]);
    ok(&["verify", &src, &dst]);
    let zarray = std::fs::read_to_string(format!("{dst}/byt/.zarray")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&zarray).unwrap();
    assert_eq!(doc["dtype"], "|u1", "{zarray}");
    assert_eq!(doc["chunks"], serde_json::json!([10, 10]), "{zarray}");
    assert!(doc["fill_value"].is_null(), "{zarray}");
    let zattrs = std::fs::read_to_string(format!("{dst}/byt/.zattrs")).unwrap();
    assert!(zattrs.matches("_Anonymous_Dim_20").count() == 2, "{zattrs}");
    python::check("real_check.py", &["zarr", &src, &dst]);
}

/// z05: a codec zarrs does not have is named once, with the array and the way out.
#[test]
fn an_unsupported_codec_is_named_once() {
    let src = real("zarr/z05-zarr-python2-fixture-20-2-bz2.zarr");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr").display().to_string();
    let out = rechunk(&[&src, &dst, "--chunks", "dim_0=50"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("z05-zarr-python2-fixture-20-2-bz2.zarr: array `z05-zarr-python2-fixture-20-2-bz2`: codec bz2 is not supported; convert it with zarr-python (numcodecs) to zstd or blosc first"),
        "{err}"
    );
    assert_eq!(lines[0].matches("not supported").count(), 1, "{err}");
}
