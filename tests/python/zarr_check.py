"""Judges our Zarr output with the reference readers (zarr-python, xarray).

usage:
  zarr_check.py identical SOURCE TARGET [VAR=c0,c1,... ...]
      xarray.open_zarr(TARGET) is identical to xarray.open_zarr(SOURCE) (values, dims, coords,
      attributes, fill values); each VAR has the given chunk shape in TARGET.
  zarr_check.py array SOURCE TARGET CHUNKS [SHARDS]
      zarr-python reads the single arrays at SOURCE and TARGET with equal values (NaN == NaN),
      attributes, fill value and dimension names; TARGET has CHUNKS (and SHARDS).
  zarr_check.py values SOURCE TARGET
      zarr-python reads the single arrays at SOURCE and TARGET with equal shapes, types and values
      (for conversions between Zarr versions, which spell attributes differently).
  zarr_check.py raw-equal TARGET RAW_DTYPE RAW_FILE SHAPE
      the array at TARGET equals the C-order bytes of RAW_FILE.
Exit status 0 and "ok" on success; a message naming what differs otherwise.
"""

import json
import math
import sys

import numpy as np
import xarray as xr
import zarr


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def shape_of(text):
    return tuple(int(c) for c in text.split(",")) if text else ()


def same_fill(a, b):
    try:
        if math.isnan(float(a)) and math.isnan(float(b)):
            return True
    except (TypeError, ValueError):
        pass
    return a == b


def identical(source, target, chunk_specs):
    a = xr.open_zarr(source, consolidated=None)
    b = xr.open_zarr(target, consolidated=True)
    xr.testing.assert_identical(a.load(), b.load())
    # The missing-value marker xarray decodes with (`_FillValue`), whichever Zarr version
    # spells it: v2 as the array's fill_value, v3 as an attribute.
    for name in a.variables:
        fa = a[name].encoding.get("_FillValue")
        fb = b[name].encoding.get("_FillValue")
        if not same_fill(fa, fb):
            fail(f"{name}: fill value {fa!r} in source, {fb!r} in target")
    group = zarr.open_group(target, mode="r")
    for spec in chunk_specs:
        name, chunks = spec.split("=")
        got = tuple(group[name].chunks)
        if got != shape_of(chunks):
            fail(f"{name}: chunks {got} in target, expected {shape_of(chunks)}")
    for key in group.attrs:
        if key.startswith("_zarrs"):
            fail(f"target has a {key} attribute")


def values(source, target):
    a = zarr.open_array(source, mode="r")
    b = zarr.open_array(target, mode="r")
    if a.shape != b.shape or a.dtype != b.dtype:
        fail(f"shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
    if not np.array_equal(a[...], b[...], equal_nan=True):
        fail("values differ")
    return a, b


def array(source, target, chunks, shards):
    a, b = values(source, target)
    def fill(x):
        return None if x.fill_value is None else x.fill_value.item()

    if not same_fill(fill(a), fill(b)):
        fail(f"fill value {a.fill_value!r} vs {b.fill_value!r}")
    attrs_a = {k: v for k, v in a.attrs.items()}
    attrs_b = {k: v for k, v in b.attrs.items()}
    if attrs_a != attrs_b:
        fail(f"attributes {json.dumps(attrs_a)} vs {json.dumps(attrs_b)}")
    if a.metadata.zarr_format == 3 and b.metadata.zarr_format == 3:
        if a.metadata.dimension_names != b.metadata.dimension_names:
            fail(f"dimension names {a.metadata.dimension_names} vs {b.metadata.dimension_names}")
    if tuple(b.chunks) != shape_of(chunks):
        fail(f"chunks {b.chunks}, expected {shape_of(chunks)}")
    if shards and tuple(b.shards or ()) != shape_of(shards):
        fail(f"shards {b.shards}, expected {shape_of(shards)}")


def raw_equal(target, dtype, raw_file, shape):
    b = zarr.open_array(target, mode="r")
    want = np.fromfile(raw_file, dtype=dtype).reshape(shape_of(shape))
    if not np.array_equal(b[...], want, equal_nan=True):
        fail("values differ from the raw bytes")


def main():
    command, *args = sys.argv[1:]
    if command == "identical":
        identical(args[0], args[1], args[2:])
    elif command == "array":
        array(args[0], args[1], args[2], args[3] if len(args) > 3 else "")
    elif command == "values":
        values(args[0], args[1])
    elif command == "raw-equal":
        raw_equal(*args)
    else:
        fail(f"unknown command {command}")
    print("ok")


main()
