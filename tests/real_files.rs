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

/// `refuse` files whose only problem was NetCDF `char` variables (the README lists them as
/// refuse for that reason), with what they hold: they convert without `--skip-unsupported` to
/// Zarr v3 and v2, NetCDF and HDF5 with identical values (`rechunk verify`), and the reference
/// readers agree (`tests/python/char_check.py`: zarr-python, netCDF4-python and h5py read the
/// same `S1` bytes, xarray decodes the same strings from the source and from Zarr v2).
const CHAR_FILES: &[(&str, &str)] = &[
    (
        "netcdf/nc01-netcdf-c-ref_nctest_classic.nc",
        "classic; char vars `charv`, `charvar`",
    ),
    (
        "netcdf/nc03-netcdf-c-ref_nccopy3_subset.nc",
        "classic; 16 char vars, 0-d ones among them (`albers_conical_equal_area`)",
    ),
    (
        "netcdf/nc11-netcdf4python-test_gold.nc",
        "NetCDF-4; char var `TIME_UTC` (time strings)",
    ),
    (
        "netcdf/nc13-netcdf-c-ref_nc_test_netcdf4_4_0.nc",
        "NetCDF-4; 23 char vars stored as HDF5 one-byte strings",
    ),
];

#[test]
fn netcdf_char_variables_convert_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (file, what)) in CHAR_FILES.iter().enumerate() {
        let src = real(file);
        let out = |ext: &str| dir.path().join(format!("{i}.{ext}")).display().to_string();
        let (v2, v3, nc, h5) = (out("v2.zarr"), out("zarr"), out("nc"), out("h5"));
        for (dst, extra) in [
            (&v2, &["--zarr-format", "2"][..]),
            (&v3, &[][..]),
            (&nc, &[][..]),
            (&h5, &[][..]),
        ] {
            let mut args = vec![src.as_str(), dst.as_str(), "--chunks", "auto", "-q"];
            args.extend_from_slice(extra);
            let run = rechunk(&args);
            assert!(
                run.status.success(),
                "{file} ({what}) -> {dst}: {}",
                stderr(&run)
            );
            ok(&["verify", &src, dst]);
        }
        python::check("char_check.py", &["check", &src, &v2, &v3, &nc, &h5]);
    }
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
const NUM_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// A chunk spec that changes something, from `rechunk inspect --json`: the first dimension of
/// the first array that has one, with half its chunk length (the whole dimension when the chunk
/// is one element). `None` for a file of scalars, which needs no `--chunks`.
fn chunks_for(src: &str) -> Option<String> {
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
        return Some(if chunk > 1 {
            format!("{dim}={}", chunk / 2)
        } else {
            format!("{dim}=-1")
        });
    }
    None
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
        let mut args = vec![src.as_str(), dst.as_str(), "-q"];
        if let Some(c) = &chunks {
            args.extend(["--chunks", c.as_str()]);
        }
        let out = rechunk(&args);
        if !out.status.success() {
            failures.push(format!("{file} --chunks {chunks:?}: {}", stderr(&out)));
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

/// The other `refuse` files (h13 above; the char files convert, see `CHAR_FILES`): refused in
/// one line that names a variable and `--skip-unsupported`; with that option converted and
/// verified, or, when it leaves nothing, refused in one line saying so.
#[test]
fn refuse_files_are_refused_in_one_line_or_skipped() {
    // (file, a variable the refusal names, whether anything is left with --skip-unsupported)
    let files = [
        (
            "netcdf/nc15-netcdf-c-ref_tst_irish_rover-enum.nc",
            "in_the_hold_of_the_Irish_Rover",
            false,
        ),
        ("hdf5/h21-h5py-compound-dtype-complex.h5", "<c16", false),
        (
            "zarr/z11-zarrita-v2-data-group-consolidated.zarr",
            "1d.contiguous.S7",
            true,
        ),
        (
            "zarr/z19-zarrita-v3-string-vlen.zarr",
            "z19-zarrita-v3-string-vlen",
            false,
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
    for (i, (file, variable, left)) in files.iter().enumerate() {
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
        let err = stderr(&out);
        assert!(
            err.lines()
                .any(|l| l.contains("skipping") && l.contains(&format!("`{variable}`"))),
            "{file}: {err}"
        );
        if *left {
            assert!(out.status.success(), "{file}: {err}");
            ok(&["verify", &src, &dst, "--skip-unsupported"]);
        } else {
            // Not "done: 0 arrays": one error line after the lines naming what was skipped.
            assert!(!out.status.success(), "{file}: {err}");
            let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(errors.len(), 1, "{file}: {err}");
            assert!(
                errors[0].contains("--skip-unsupported leaves nothing to convert")
                    && errors[0].contains(file.rsplit('/').next().unwrap()),
                "{file}: {err}"
            );
            assert!(!std::path::Path::new(&dst).exists(), "{file} wrote {dst}");
        }
    }
}

/// nc07 holds only scalars: it converts without `--chunks` (no value could name a dimension
/// of it). A file with dimensions still needs `--chunks`, refused in one line whose example
/// uses its own dimension names.
#[test]
fn chunks_are_needed_only_where_there_is_a_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let scalars = real("netcdf/nc07-netcdf-c-ref_null_byte_padding_test.nc");
    for ext in ["zarr", "nc"] {
        let dst = dir.path().join(format!("s.{ext}")).display().to_string();
        ok(&[&scalars, &dst, "-q"]);
        ok(&["verify", &scalars, &dst]);
    }
    let src = real("netcdf/nc13-netcdf-c-ref_nc_test_netcdf4_4_0.nc");
    let dst = dir.path().join("d.zarr").display().to_string();
    let out = rechunk(&[&src, &dst]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--chunks Dr=-1,") && err.contains("--chunks auto"),
        "{err}"
    );
    assert!(!std::path::Path::new(&dst).exists());
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

/// nc19: groups g1, g2, g2/g3 each define their own `dim` (lengths 1, 2, 3; the root's is 4) and
/// `g2/g3/var2(/dim, /g2/dim, dim)` uses those of its ancestors. Each is its own dimension,
/// named by its path (`/g2/dim`); `--chunks dim=N` sets all of them and `g2/dim=N` that one.
/// In Zarr v3, v2 and NetCDF output each group names its own `dim` so and an ancestor's
/// `dim@g2` / `dim@root`, so xarray opens every group with the right sizes; values are
/// identical (h5py reads the source, as the real files' README says).
#[test]
fn netcdf_groups_whose_dimensions_share_a_name() {
    let src = real("netcdf/nc19-ncgen-ref_tst_group_data-groups.nc");
    let inspect = ok(&["inspect", &src]);
    assert!(
        inspect.contains("dimensions: /dim=4, /g1/dim=1, /g2/dim=2, /g2/g3/dim=3")
            && inspect.contains("g2/g3/var2 float32 (/dim, /g2/dim, /g2/g3/dim)"),
        "{inspect}"
    );
    let dir = tempfile::tempdir().unwrap();
    let groups = [
        "=dim:4",
        "g1=dim:1",
        "g2=dim:2",
        "g2/g3=dim:3,dim@root:4,dim@g2:2",
    ];
    for (name, extra) in [
        ("v3.zarr", &["--zarr-format", "3"][..]),
        ("v2.zarr", &["--zarr-format", "2"][..]),
        ("out.nc", &[][..]),
    ] {
        let dst = dir.path().join(name).display().to_string();
        let mut args = vec![src.as_str(), &dst, "--chunks", "dim=2,g2/dim=1", "-q"];
        args.extend(extra);
        ok(&args);
        ok(&["verify", &src, &dst]);
        let inspect = ok(&["inspect", &dst]);
        for (var, chunks) in [
            ("var", "(2)"),
            ("g1/var", "(1)"),
            ("g2/var", "(1)"),
            ("g2/g3/var", "(2)"),
            ("g2/g3/var2", "(2, 1, 2)"),
        ] {
            assert!(
                inspect.lines().any(|l| l.starts_with(&format!("  {var} "))
                    && l.contains(&format!("chunks {chunks}"))),
                "{name}: {var} chunks {chunks}: {inspect}"
            );
        }
        let mut check = vec!["dims", src.as_str(), &dst];
        check.extend(groups);
        python::check("real_check.py", &check);
    }
    // A name that addresses nothing lists the dimensions there are.
    let dst = dir.path().join("bad.zarr").display().to_string();
    let out = rechunk(&[&src, &dst, "--chunks", "g1/g2/dim=1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/g2/g3/dim"), "{}", stderr(&out));
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
