"""Judges our output from NetCDF/HDF5 sources with the reference readers.

usage:
  nc_check.py mf-vs-zarr PATTERN CONCAT_DIM ZARR
      xarray.open_mfdataset(PATTERN) is identical to xarray.open_zarr(ZARR): values, dims,
      coordinates, attributes, and the encoding of fill values and packing.
  nc_check.py nc-vs-nc SOURCE TARGET VAR=c0,c1,...
      netCDF4-python reads TARGET with the same values, attributes and fill values as SOURCE,
      and VAR has the chunk sizes given, with deflate + shuffle.
  nc_check.py h5-vs-h5 SOURCE TARGET DATASET=c0,c1,...
      h5py (with hdf5plugin) reads TARGET with the same values and attributes as SOURCE, and
      DATASET has the chunks given.
"""

import glob
import sys

import numpy as np
import xarray as xr


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


ENCODING_KEYS = ("_FillValue", "scale_factor", "add_offset", "dtype", "units", "calendar")


def same(a, b):
    # Fixed-length (bytes) and variable-length (str) strings of the same text are the same.
    def norm(x):
        if isinstance(x, bytes):
            return x.decode()
        if isinstance(x, np.ndarray) and x.dtype.kind in "OSU":
            return [v.decode() if isinstance(v, bytes) else v for v in x.tolist()]
        return x

    a, b = norm(a), norm(b)
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    except TypeError:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def mf_vs_zarr(pattern, dim, zarr_path):
    files = sorted(glob.glob(pattern))
    opts = dict(combine="nested", concat_dim=dim, data_vars="minimal", coords="minimal", compat="override")
    # 1. What is stored: packed integers, fill values and packing attributes, identical.
    a = xr.open_mfdataset(files, mask_and_scale=False, **opts)
    b = xr.open_zarr(zarr_path, consolidated=True, mask_and_scale=False)
    xr.testing.assert_identical(a.load(), b.load())
    # 2. What users see after CF decoding. JSON has no float32, so xarray decodes a Zarr
    # variable packed with a float32 scale_factor to float64 where NetCDF gives float32: those
    # variables must agree in value (to float32 precision); everything else is identical.
    a = xr.open_mfdataset(files, **opts).load()
    b = xr.open_zarr(zarr_path, consolidated=True).load()
    packed = [n for n in a.variables if "scale_factor" in a[n].encoding or "add_offset" in a[n].encoding]
    for name in packed:
        np.testing.assert_allclose(a[name].values, b[name].values.astype(a[name].dtype), rtol=1e-6, equal_nan=True)
        if a[name].attrs != b[name].attrs or a[name].dims != b[name].dims:
            fail(f"{name}: attributes or dims differ after decoding")
    xr.testing.assert_identical(a.drop_vars(packed), b.drop_vars(packed))
    for name in a.variables:
        for key in ENCODING_KEYS:
            ea, eb = a[name].encoding.get(key), b[name].encoding.get(key)
            if not same(ea, eb):
                fail(f"{name}: encoding {key} is {ea!r} in the NetCDF files, {eb!r} in the Zarr store")


def chunk_spec(specs):
    out = {}
    for spec in specs:
        name, chunks = spec.split("=")
        out[name] = tuple(int(c) for c in chunks.split(","))
    return out


def nc_vs_nc(source, target, specs):
    import netCDF4

    a, b = netCDF4.Dataset(source), netCDF4.Dataset(target)
    for name, va in a.variables.items():
        vb = b.variables[name]
        va.set_auto_maskandscale(False)
        vb.set_auto_maskandscale(False)
        # Byte order may differ (we write native little-endian); the type may not.
        same_type = np.dtype(va.dtype).newbyteorder("=") == np.dtype(vb.dtype).newbyteorder("=")
        if not same(va[...], vb[...]) or not same_type or va.dimensions != vb.dimensions:
            fail(f"{name}: values, dtype or dimensions differ")
        attrs_a = {k: va.getncattr(k) for k in va.ncattrs()}
        attrs_b = {k: vb.getncattr(k) for k in vb.ncattrs()}
        if attrs_a.keys() != attrs_b.keys() or not all(same(attrs_a[k], attrs_b[k]) for k in attrs_a):
            fail(f"{name}: attributes {attrs_a} vs {attrs_b}")
        if attrs_a.get("_FillValue") is not None and not same(np.asarray(attrs_a["_FillValue"]).dtype, np.asarray(attrs_b["_FillValue"]).dtype):
            fail(f"{name}: _FillValue type differs")
    for name, chunks in chunk_spec(specs).items():
        v = b.variables[name]
        if tuple(v.chunking()) != chunks:
            fail(f"{name}: chunks {v.chunking()}, expected {chunks}")
        filters = v.filters()
        # Shuffling one-byte elements changes nothing: writers leave it off for them.
        if not filters.get("zlib") or (v.dtype.itemsize > 1 and not filters.get("shuffle")):
            fail(f"{name}: filters {filters}, expected zlib + shuffle")
    if {k: a.getncattr(k) for k in a.ncattrs()}.keys() != {k: b.getncattr(k) for k in b.ncattrs()}.keys():
        fail("global attributes differ")


def h5_vs_h5(source, target, specs):
    import h5py
    import hdf5plugin  # noqa: F401  (registers zstd and other filters)

    a, b = h5py.File(source, "r"), h5py.File(target, "r")
    names = []
    a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    for name in names:
        da, db = a[name], b[name]
        same_type = np.dtype(da.dtype).newbyteorder("=") == np.dtype(db.dtype).newbyteorder("=")
        if not same(da[()], db[()]) or not same_type:
            fail(f"{name}: values or dtype differ")
        skip = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates"}
        attrs_a = {k: v for k, v in da.attrs.items() if k not in skip}
        attrs_b = {k: v for k, v in db.attrs.items() if k not in skip}
        if attrs_a.keys() != attrs_b.keys() or not all(same(attrs_a[k], attrs_b[k]) for k in attrs_a):
            fail(f"{name}: attributes {attrs_a} vs {attrs_b}")
    for name, chunks in chunk_spec(specs).items():
        if b[name].chunks != chunks:
            fail(f"{name}: chunks {b[name].chunks}, expected {chunks}")


def main():
    command, *args = sys.argv[1:]
    if command == "mf-vs-zarr":
        mf_vs_zarr(*args)
    elif command == "nc-vs-nc":
        nc_vs_nc(args[0], args[1], args[2:])
    elif command == "h5-vs-h5":
        h5_vs_h5(args[0], args[1], args[2:])
    else:
        fail(f"unknown command {command}")
    print("ok")


main()
