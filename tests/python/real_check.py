"""Judges a Zarr conversion of a file written by other software, with that format's own reader.

usage:
  real_check.py READER SOURCE TARGET
      READER (netcdf4, h5py, tiledb or zarr) reads every variable of SOURCE as stored (no
      masking, scaling or unsigned reinterpretation); zarr-python reads every array of the Zarr
      store TARGET; both hold the same variables (by path) with the same shapes, types (byte
      order aside) and values, compared exactly (NaN equals NaN, -0.0 differs from 0.0).
      Then xarray opens every group of TARGET (consolidated), except those of SKIP_GROUPS.
  real_check.py READER SOURCE TARGET SKIP_GROUPS
      SKIP_GROUPS: comma-separated group paths that xarray is not asked to open (the test that
      passes them gives its reason).
  real_check.py groups TARGET GROUP=CHILD,CHILD ...
      zarr-python opens the Zarr group TARGET from its consolidated metadata, and each GROUP
      ("" for the root) has exactly those children; xarray opens each GROUP (consolidated).
  real_check.py dims SOURCE TARGET GROUP=DIM:SIZE,DIM:SIZE ...
      xarray opens each GROUP ("" for the root) of TARGET (a Zarr store, consolidated, or a
      NetCDF file) and finds exactly those dimensions with those sizes; h5py reads SOURCE (a
      NetCDF-4 file) and the same values are in TARGET (h5py for NetCDF, zarr-python for Zarr).
Exit status 0 and "ok" on success; a message naming what differs otherwise.
"""

import json
import os
import sys
import warnings

import numpy as np
import xarray as xr
import zarr

# NetCDF-4 names a variable that shares its name with a dimension of another length so.
NON_COORD_PREFIX = "_nc4_non_coord_"


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def native(a):
    """`a` as a numpy array in native byte order."""
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder("="), copy=False)


def read_netcdf4(path):
    import netCDF4

    out = {}

    def walk(group, prefix):
        for name, var in group.variables.items():
            var.set_auto_maskandscale(False)
            out[prefix + name] = var[...]
        for name, child in group.groups.items():
            walk(child, prefix + name + "/")

    with netCDF4.Dataset(path) as ds:
        walk(ds, "")
        return {k: native(v) for k, v in out.items()}


def read_h5py(path):
    import h5py
    import hdf5plugin  # noqa: F401  (registers zstd and other filters)

    out = {}

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        label = obj.attrs.get("NAME")
        if isinstance(label, bytes):
            label = label.decode()
        # A NetCDF-4 dimension without a coordinate variable: not data.
        if isinstance(label, str) and label.startswith("This is a netCDF dimension but not a netCDF variable"):
            return
        parts = name.split("/")
        parts[-1] = parts[-1].removeprefix(NON_COORD_PREFIX)
        out["/".join(parts)] = native(obj[()])

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def read_tiledb(path):
    import tiledb

    with tiledb.open(path) as a:
        data = a[:]
        return {name: native(values) for name, values in data.items()}


def open_zarr_tolerant(path):
    """zarr-python's view of the store at `path`. zarr-python 3 refuses a one-byte v2 dtype
    spelled with a byte order (`<u1`, as NCZarr writes it): such a store is read through an
    in-memory copy whose `.zarray` documents spell it `|u1`."""
    try:
        node = zarr.open(path, mode="r")
        zarr_arrays(node)
        return node
    except ValueError as e:
        if "data type" not in str(e):
            raise
    from zarr.core.buffer import cpu
    from zarr.storage import MemoryStore

    files = {}
    for root, _, names in os.walk(path):
        for n in names:
            full = os.path.join(root, n)
            key = os.path.relpath(full, path).replace(os.sep, "/")
            with open(full, "rb") as fh:
                data = fh.read()
            if n == ".zarray":
                doc = json.loads(data)
                if doc.get("dtype") in ("<u1", ">u1", "<i1", ">i1", "<b1", ">b1"):
                    doc["dtype"] = "|" + doc["dtype"][1:]
                data = json.dumps(doc).encode()
            files[key] = cpu.Buffer.from_bytes(data)
    return zarr.open(MemoryStore(files, read_only=True), mode="r")


def zarr_arrays(node):
    """{path: Array} of a Zarr group (every depth), or {"": array} for a lone array."""
    if isinstance(node, zarr.Array):
        return {"": node}
    return {path: n for path, n in node.members(max_depth=None) if isinstance(n, zarr.Array)}


def zarr_groups(node):
    if isinstance(node, zarr.Array):
        return []
    return [""] + [path for path, n in node.members(max_depth=None) if isinstance(n, zarr.Group)]


def read_zarr(path):
    return {k: native(a[...]) for k, a in zarr_arrays(open_zarr_tolerant(path)).items()}


READERS = {"netcdf4": read_netcdf4, "h5py": read_h5py, "tiledb": read_tiledb, "zarr": read_zarr}


def same_values(a, b):
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if (a.dtype.kind, a.dtype.itemsize) != (b.dtype.kind, b.dtype.itemsize):
        return f"type {a.dtype} vs {b.dtype}"
    if a.dtype.kind == "f":
        if not np.array_equal(a, b, equal_nan=True) or not np.array_equal(np.signbit(a), np.signbit(b)):
            bad = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b))))
            return f"values differ, first at {tuple(bad[0]) if len(bad) else '?'}"
    elif not np.array_equal(a, b):
        bad = np.argwhere(a != b)
        return f"values differ, first at {tuple(bad[0])}: {a[tuple(bad[0])]} vs {b[tuple(bad[0])]}"
    return None


def xarray_error(store, group, consolidated):
    """Why xarray cannot open `group` of the Zarr `store`, or None."""
    with warnings.catch_warnings():
        # xarray warns about (and then allows) one dimension named twice in a variable.
        warnings.simplefilter("ignore")
        try:
            xr.open_zarr(store, group=group or None, consolidated=consolidated).load()
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            return f"{type(e).__name__}: {e}"
    return None


def groups(target, specs):
    root = zarr.open_group(target, mode="r", use_consolidated=True)
    for spec in specs:
        group, children = spec.split("=")
        node = root[group] if group else root
        got = sorted(node.keys())
        want = sorted(filter(None, children.split(",")))
        if got != want:
            fail(f"group `{group}` of {target}: children {got}, expected {want}")
        problem = xarray_error(target, group, True)
        if problem:
            fail(f"xarray cannot open group `{group}` of {target}: {problem}")
    print(f"ok: {len(specs)} groups")


def dims(source, target, specs):
    netcdf = not os.path.isdir(target)
    expected = read_h5py(source)
    got = read_h5py(target) if netcdf else read_zarr(target)
    if set(expected) != set(got):
        fail(f"variables differ: source {sorted(expected)}, target {sorted(got)}")
    for name, a in expected.items():
        problem = same_values(a, got[name])
        if problem:
            fail(f"`{name}`: {problem}")
    for spec in specs:
        group, sizes = spec.split("=")
        want = {d: int(n) for d, n in (item.rsplit(":", 1) for item in sizes.split(",") if item)}
        try:
            if netcdf:
                ds = xr.open_dataset(target, group=group or None)
            else:
                ds = xr.open_zarr(target, group=group or None, consolidated=True)
            ds.load()
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            fail(f"xarray cannot open group `{group}` of {target}: {type(e).__name__}: {e}")
        if dict(ds.sizes) != want:
            fail(f"group `{group}` of {target}: dimensions {dict(ds.sizes)}, expected {want}")
    print(f"ok: {len(expected)} variables, {len(specs)} groups")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "groups":
        return groups(sys.argv[2], sys.argv[3:])
    if len(sys.argv) >= 4 and sys.argv[1] == "dims":
        return dims(sys.argv[2], sys.argv[3], sys.argv[4:])
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in READERS:
        fail(__doc__)
    reader, source, target = sys.argv[1:4]
    skip_groups = set(filter(None, sys.argv[4].split(","))) if len(sys.argv) == 5 else set()
    expected = READERS[reader](source)
    node = zarr.open(target, mode="r")
    got = {k: native(a[...]) for k, a in zarr_arrays(node).items()}
    if set(expected) != set(got):
        fail(f"variables differ: source {sorted(expected)}, target {sorted(got)}")
    for name, a in expected.items():
        problem = same_values(a, got[name])
        if problem:
            fail(f"`{name}`: {problem}")
    for group in zarr_groups(node):
        if group in skip_groups:
            continue
        # A Zarr source keeps its metadata as it was (no invented dimension names): its groups
        # must open wherever the source's open.
        if reader == "zarr" and xarray_error(source, group, None):
            continue
        problem = xarray_error(target, group, True)
        if problem:
            fail(f"xarray cannot open group `{group}` of {target}: {problem}")
    print(f"ok: {len(expected)} variables")


if __name__ == "__main__":
    main()
