"""NetCDF `char` variables (CF station names, time strings) as the reference readers see them.

usage:
  char_check.py write SOURCE
      writes a NetCDF-4 file with netCDF4-python: `station_name(station, name_strlen)` char with
      `_Encoding = "utf-8"` (non-ASCII included), `time_str(time, date_strlen)` char, a 0-d char
      `flag` and float `temp(time, station)`.
  char_check.py check SOURCE ZARR_V2 ZARR_V3 NETCDF HDF5
      every char variable of SOURCE (netCDF4-python, raw bytes) reads the same from ZARR_V3
      (zarr-python 3, dtype S1), NETCDF (netCDF4-python: bytes, attributes, dims) and HDF5
      (h5py, dtype S1); xarray decodes SOURCE (open_dataset) and ZARR_V2 (open_zarr) to
      identical string arrays.
"""

import sys
import warnings

import numpy as np


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def write(path):
    import netCDF4

    names = ["Zürich", "Bergen", "Mawson"]
    times = ["2024-01-01T00:00:00Z", "2024-01-01T06:00:00Z", "2024-01-01T12:00:00Z", ""]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("station", len(names))
        ds.createDimension("name_strlen", 8)
        ds.createDimension("time", None)
        ds.createDimension("date_strlen", 20)
        v = ds.createVariable("station_name", "S1", ("station", "name_strlen"))
        v.cf_role = "timeseries_id"
        v._Encoding = "utf-8"
        encoded = np.array([x.encode("utf-8") for x in names], dtype="S8")
        v[:] = encoded.view("S1").reshape(len(names), 8)
        t = ds.createVariable("time_str", "S1", ("time", "date_strlen"))
        t.long_name = "time of observation"
        t[:] = netCDF4.stringtochar(np.array(times, dtype="S20"))
        f = ds.createVariable("flag", "S1", ())
        f[...] = np.array(b"y", dtype="S1")
        temp = ds.createVariable("temp", "f4", ("time", "station"))
        temp.units = "K"
        temp[:] = np.arange(len(times) * len(names), dtype="f4").reshape(len(times), -1)
    print("ok")


def check(src, v2, v3, nc, h5):
    import h5py
    import netCDF4
    import xarray as xr
    import zarr

    warnings.simplefilter("ignore")  # zarr-python warns that v3 S1 has no spec yet
    problems = []
    s = netCDF4.Dataset(src)
    s.set_auto_chartostring(False)
    s.set_auto_mask(False)
    chars = [k for k, v in s.variables.items() if v.dtype == np.dtype("S1")]
    if not chars:
        fail(f"{src} has no char variables")

    z = zarr.open_group(v3, mode="r")
    n = netCDF4.Dataset(nc)
    n.set_auto_chartostring(False)
    n.set_auto_mask(False)
    h = h5py.File(h5, "r")
    for k in chars:
        ref = np.asarray(s[k][...])
        for reader, got in [
            ("zarr-python v3", np.asarray(z[k][...])),
            ("netCDF4", np.asarray(n[k][...])),
            ("h5py", np.asarray(h[k][()])),
        ]:
            if got.dtype != np.dtype("S1") or got.shape != ref.shape or not np.array_equal(got, ref):
                problems.append(f"{k}: {reader} reads {got!r} ({got.dtype}), the source {ref!r}")
        if n[k].dimensions != s[k].dimensions:
            problems.append(f"{k}: netCDF4 dims {n[k].dimensions} != {s[k].dimensions}")
        src_attrs = {a: np.asarray(s[k].getncattr(a)).tolist() for a in s[k].ncattrs()}
        nc_attrs = {a: np.asarray(n[k].getncattr(a)).tolist() for a in n[k].ncattrs()}
        if nc_attrs != src_attrs:
            problems.append(f"{k}: netCDF4 attributes {nc_attrs} != {src_attrs}")
        if n[k].datatype != s[k].datatype:
            problems.append(f"{k}: netCDF4 type {n[k].datatype} != {s[k].datatype}")

    a = xr.open_dataset(src)
    b = xr.open_zarr(v2, consolidated=False)
    for k in chars:
        if k not in a.variables:
            continue
        x, y = a[k].values, b[k].values
        if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
            problems.append(f"{k}: xarray decodes {x!r} from the source, {y!r} from Zarr v2")
        if a[k].dims != b[k].dims:
            problems.append(f"{k}: xarray dims {a[k].dims} != {b[k].dims}")
    if problems:
        fail("\n".join(problems))
    print("ok")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "write":
        write(sys.argv[2])
    elif mode == "check":
        check(*sys.argv[2:7])
    else:
        fail(__doc__)
