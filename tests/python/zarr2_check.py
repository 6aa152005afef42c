"""Judges our Zarr v2 output with zarr-python 2 (run by the python of .venv-zarr2).

usage:
  zarr2_check.py make-array PATH
      zarr-python 2 writes a lone float32 array with its defaults (blosc lz4 5 + shuffle), a
      NaN fill value, xarray's `_ARRAY_DIMENSIONS` and a unit.
  zarr2_check.py make-group PATH
      zarr-python 2 writes a consolidated group: `tas(time, lat)` float32 with its defaults,
      `lat(lat)` float64 zlib, `count(time)` int16 without compressor, and a subgroup `sub`
      holding `flag(time)` bool.
  zarr2_check.py array SOURCE TARGET CHUNKS
      zarr-python 2 opens SOURCE and TARGET as arrays (not groups) with equal values, dtype,
      compressor, filters, fill value, order, dimension separator and attributes; TARGET has
      CHUNKS.
  zarr2_check.py npz TARGET NPZ
      zarr-python 2 opens TARGET's consolidated metadata and holds every array of NPZ (written by
      nc_dump.py) with equal values and dtype.
  zarr2_check.py group SOURCE TARGET
      zarr-python 2 opens TARGET's consolidated metadata and every array of SOURCE is in TARGET
      with equal values, dtype and attributes.
Exit status 0 and "ok" on success; a message naming what differs otherwise.
"""

import sys

import numcodecs
import numpy as np
import zarr


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def values(t, y):
    return (273.15 + 30 * np.cos(y * 0.02) + 0.1 * t).astype("f4")


def make_array(path):
    t, y = np.meshgrid(np.arange(48), np.arange(30), indexing="ij")
    a = zarr.open_array(path, mode="w", shape=(48, 30), chunks=(1, 30), dtype="f4", fill_value=np.nan)
    a[:] = values(t, y)
    a.attrs["_ARRAY_DIMENSIONS"] = ["time", "lat"]
    a.attrs["units"] = "K"


def make_group(path):
    root = zarr.open_group(path, mode="w")
    root.attrs["title"] = "written by zarr-python 2"
    t, y = np.meshgrid(np.arange(48), np.arange(30), indexing="ij")
    tas = root.create_dataset("tas", shape=(48, 30), chunks=(1, 30), dtype="f4", fill_value=np.nan)
    tas[:] = values(t, y)
    tas.attrs.update({"_ARRAY_DIMENSIONS": ["time", "lat"], "units": "K"})
    lat = root.create_dataset(
        "lat", data=np.linspace(-90, 90, 30), chunks=(30,), compressor=numcodecs.Zlib(level=4)
    )
    lat.attrs["_ARRAY_DIMENSIONS"] = ["lat"]
    count = root.create_dataset(
        "count", data=np.arange(48, dtype="i2") * 3, chunks=(4,), compressor=None, fill_value=-1
    )
    count.attrs["_ARRAY_DIMENSIONS"] = ["time"]
    sub = root.create_group("sub")
    flag = sub.create_dataset("flag", data=np.arange(48) % 3 == 0, chunks=(10,))
    flag.attrs["_ARRAY_DIMENSIONS"] = ["time"]
    zarr.consolidate_metadata(path)


def same_array(name, a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        fail(f"{name}: {a.dtype}{a.shape} in source, {b.dtype}{b.shape} in target")
    x, y = a[...], b[...]
    equal = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)
    if not equal:
        fail(f"{name}: values differ")
    if dict(a.attrs) != dict(b.attrs):
        fail(f"{name}: attributes {dict(a.attrs)} in source, {dict(b.attrs)} in target")


def array(source, target, chunks):
    a = zarr.open_array(source, mode="r")
    b = zarr.open_array(target, mode="r")
    same_array(target, a, b)
    want = tuple(int(c) for c in chunks.split(","))
    if b.chunks != want:
        fail(f"{target}: chunks {b.chunks}, wanted {want}")
    for what in ["compressor", "filters", "order", "_dimension_separator"]:
        if getattr(a, what) != getattr(b, what):
            fail(f"{target}: {what} {getattr(a, what)!r} in source, {getattr(b, what)!r} in target")
    fa, fb = a.fill_value, b.fill_value
    if not (fa == fb or (fa is not None and fb is not None and np.isnan(fa) and np.isnan(fb))):
        fail(f"{target}: fill value {fa!r} in source, {fb!r} in target")


def group(source, target):
    a = zarr.open_consolidated(source, mode="r") if has_consolidated(source) else zarr.open_group(source, mode="r")
    b = zarr.open_consolidated(target, mode="r")
    if dict(a.attrs) != dict(b.attrs):
        fail(f"{target}: group attributes {dict(a.attrs)} in source, {dict(b.attrs)} in target")
    names = []
    a.visititems(lambda name, node: names.append(name) if isinstance(node, zarr.Array) else None)
    if not names:
        fail(f"{source}: no arrays")
    for name in names:
        same_array(f"{target}/{name}", a[name], b[name])


def npz(target, npz_path):
    b = zarr.open_consolidated(target, mode="r")
    want = np.load(npz_path)
    if not want.files:
        fail(f"{npz_path}: no arrays")
    for name in want.files:
        x, y = want[name], b[name][...]
        if x.dtype != y.dtype or x.shape != y.shape:
            fail(f"{target}/{name}: {y.dtype}{y.shape}, source {x.dtype}{x.shape}")
        if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            fail(f"{target}/{name}: values differ")


def has_consolidated(path):
    import os

    return os.path.exists(os.path.join(path, ".zmetadata"))


def main():
    if not zarr.__version__.startswith("2."):
        fail(f"zarr2_check.py needs zarr-python 2, this python has zarr {zarr.__version__}")
    mode, args = sys.argv[1], sys.argv[2:]
    {"make-array": make_array, "make-group": make_group, "array": array, "group": group, "npz": npz}[mode](*args)
    print("ok")


if __name__ == "__main__":
    main()
