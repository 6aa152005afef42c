"""The reader matrix (issue #13 item 5): a small CF-like dataset written by each format's own
reference writer, rechunked to every format, judged by the readers people use.

usage:
  matrix_check.py make FORMAT PATH [lone]
      FORMAT's reference writer writes the dataset at PATH: netCDF4-python (nc), h5py with
      dimension scales (h5), xarray over zarr-python 3 (zarr: v3; zarr2: v2), tiledb-py (tdb: a
      group of one dense array per variable, the layout rechunk's TileDB target writes). `lone`:
      one variable without coordinates instead, as a lone array where the format has them
      (zarr-python 3, zarr-python 2, tiledb-py) and a file of one variable in NetCDF and HDF5.
  matrix_check.py compare SRC_FORMAT SRC DST_FORMAT DST CHUNKS... [+ DST_FORMAT DST CHUNKS... ...]
      reads SRC with its format's reader and each DST with the target format's reader(s) (zarr:
      zarr-python 3; zarr2 output also zarr-python 2), each into one view (variables -> dims,
      dtype, values, attributes; global attributes; coordinates; NetCDF's unlimited
      dimensions), and compares them. NetCDF and Zarr targets must also open in xarray
      (`xr.open_dataset(DST)` / `xr.open_zarr(DST)`, no options) and show the source's
      variables, dims, coordinates and CF-decoded values. CHUNKS (`VAR=c0,c1,..`) are the chunk
      shapes DST must have.
  matrix_check.py zarr2-view PATH / make-lone-zarr2 PATH
      (run by zarr-python 2's python) prints the view of the Zarr v2 group or array at PATH as
      JSON / writes the lone v2 array.
Exit status 0 and "ok" on success; otherwise one line per difference, naming the pair, the
variable and what differs.

Allowances, where a format cannot carry something (each also noted where it is made):
- Zarr attributes are JSON, which has one integer and one real type: attribute widths are
  compared only where both readers see them (netCDF4-python, h5py), kinds everywhere.
- The order of attributes is not compared: TileDB metadata come back sorted by key.
- Conventions are read as their readers define them: Zarr dims from v3 `dimension_names` / v2
  `_ARRAY_DIMENSIONS`, `_FillValue` from the v3 attribute / the v2 fill_value (as xarray);
  HDF5 dims from dimension scales, a coordinate is a scale, a scale named "This is a netCDF
  dimension but not a netCDF variable" is a dimension (netCDF-4's convention); TileDB
  variable attributes of a lone array are TileDB-CF's `__tiledb_attr.NAME.KEY`.
- A lone Zarr array has no name but its folder's and no dataset attributes; xarray cannot open
  it (it opens groups), so only a lone array that came from one is spared the xarray check.
"""

import base64
import json
import math
import os
import subprocess
import sys

import numpy as np

# -- the dataset ---------------------------------------------------------------------------

NT, NY, NX = 6, 5, 4
FILL = np.float32(1.0e20)
GLOBAL_ATTRS = {
    "title": "reader matrix",
    "Conventions": "CF-1.8",
    "realization": 3,
    "resolution": 2.5,
    "levels": [1000.0, 850.0, 500.0],
    "members": [1, 2, 5],
}


def dataset():
    """name -> (dims, values, attrs), in the order they are written."""
    t, y, x = np.meshgrid(np.arange(NT), np.arange(NY), np.arange(NX), indexing="ij")
    tas = (250.0 + 0.5 * t + 2.0 * y - 1.5 * x).astype("f4")
    tas[1, 2, 3] = np.nan  # a NaN that is data
    tas[4, 0, 1] = FILL  # a missing value
    count = ((np.arange(NT)[:, None] * 7 - np.arange(NY)[None, :] * 3) % 50 - 20).astype("i2")
    pr = (np.arange(NT * NY).reshape(NT, NY) * 37 % 900).astype("i2")
    pr[2, 3] = -32767  # missing
    time = np.arange(NT, dtype="f8") * 0.25
    return {
        "time": (
            ("time",),
            time,
            {
                "units": "days since 2000-01-01",
                "calendar": "standard",
                "axis": "T",
                "standard_name": "time",
                "bounds": "time_bnds",
            },
        ),
        # A dimension without a coordinate variable (`nv`), as CF bounds have.
        "time_bnds": (("time", "nv"), np.stack([time - 0.125, time + 0.125], axis=1), {}),
        "lat": (("lat",), np.linspace(-60, 60, NY).astype("f4"), {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": (("lon",), np.linspace(0, 270, NX).astype("f4"), {"units": "degrees_east", "standard_name": "longitude"}),
        "tas": (
            ("time", "lat", "lon"),
            tas,
            {
                "_FillValue": FILL,
                "units": "K",
                "long_name": "near-surface air temperature",
                "valid_range": np.array([150.0, 350.0], dtype="f4"),
                "scale_note": 7,
                "weight": 0.75,
            },
        ),
        "count": (("time", "lat"), count, {"units": "1", "flag": np.int16(2), "offsets": [0.5, 1.5]}),
        # CF station names: NetCDF `char`, one byte per element (item 2 of the issue).
        "station_name": (
            ("station", "strlen"),
            np.array([list(n.ljust(8, "\0")) for n in ["alpha", "beta", "gamma_xy"]], dtype="S1"),
            {"cf_role": "timeseries_id", "long_name": "station name"},
        ),
        # Packed data: xarray unpacks it with scale_factor's type.
        "pr": (
            ("time", "lat"),
            pr,
            {"_FillValue": np.int16(-32767), "scale_factor": np.float32(0.01), "add_offset": np.float32(0.0), "units": "mm"},
        ),
    }


def dimensions():
    """Every dimension and its length, in order of first use."""
    out = {}
    for dims, values, _ in dataset().values():
        for d, n in zip(dims, values.shape):
            out.setdefault(d, n)
    return out


# netCDF-4's NAME of the dimension scale of a dimension without a variable (h5netcdf writes it too).
PHONY_SCALE = "This is a netCDF dimension but not a netCDF variable."


# -- reference writers ---------------------------------------------------------------------


def make_nc(path):
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts(GLOBAL_ATTRS)
        for dim, n in dimensions().items():
            nc.createDimension(dim, None if dim == "time" else n)
        for name, (dims, values, attrs) in dataset().items():
            attrs = dict(attrs)
            fill = attrs.pop("_FillValue", None)
            chunks = [1] + list(values.shape[1:]) if values.ndim > 1 else None
            v = nc.createVariable(name, values.dtype, dims, fill_value=fill, zlib=True, chunksizes=chunks)
            v.set_auto_maskandscale(False)
            v.setncatts(attrs)
            v[...] = values


def make_h5(path):
    import h5py

    data = dataset()
    with h5py.File(path, "w") as f:
        f.attrs.update(GLOBAL_ATTRS)
        for name, (dims, values, attrs) in data.items():
            chunks = (1,) + values.shape[1:] if values.ndim > 1 else None
            fill = attrs.get("_FillValue")
            d = f.create_dataset(name, data=values, chunks=chunks, compression="gzip", shuffle=True, fillvalue=fill)
            d.attrs.update(attrs)
            if dims == (name,):
                d.make_scale(name)
        for dim, n in dimensions().items():
            if dim not in data:
                # HDF5 has no dimension without a dataset: netCDF-4's convention, an empty
                # scale whose NAME says so.
                scale = f.create_dataset(dim, shape=(n,), dtype="f4")
                scale.make_scale(f"{PHONY_SCALE}{n:10d}")
        for name, (dims, _, _) in data.items():
            for i, dim in enumerate(dims):
                if dim != name:
                    f[name].dims[i].attach_scale(f[dim])


def xarray_dataset():
    import xarray as xr

    variables = {}
    encoding = {}
    for name, (dims, values, attrs) in dataset().items():
        attrs = dict(attrs)
        fill = attrs.pop("_FillValue", None)
        variables[name] = xr.Variable(dims, values, attrs)
        encoding[name] = {"_FillValue": fill}
    coords = {n: v for n, v in variables.items() if v.dims == (n,)}
    data_vars = {n: v for n, v in variables.items() if n not in coords}
    return xr.Dataset(data_vars, coords=coords, attrs=GLOBAL_ATTRS), encoding


def make_zarr(path, zarr_format):
    ds, encoding = xarray_dataset()
    for name, enc in encoding.items():
        if ds[name].ndim > 1:
            enc["chunks"] = (1,) + ds[name].shape[1:]
    ds.to_zarr(path, mode="w", zarr_format=zarr_format, encoding=encoding, consolidated=True)
    # xarray writes NaN as the fill value; the NaN that is data goes back in, raw, so every
    # format's source holds the same values.
    import zarr

    zarr.open_array(os.path.join(path, "tas"), mode="r+")[...] = dataset()["tas"][1]


def make_tdb(path):
    import tiledb

    tiledb.Group.create(path)
    group = tiledb.Group(path, "w")
    for key, value in GLOBAL_ATTRS.items():
        group.meta[key] = np.array(value) if isinstance(value, list) else value
    for name, (dims, values, attrs) in dataset().items():
        domain = tiledb.Domain(
            *[
                tiledb.Dim(name=d, domain=(0, n - 1), tile=1 if i == 0 and values.ndim > 1 else n, dtype=np.uint64)
                for i, (d, n) in enumerate(zip(dims, values.shape))
            ]
        )
        # TileDB forbids an attribute named like a dimension: a coordinate's attribute is
        # anonymous, as tiledb.from_numpy writes it.
        attr_name = "" if name in dims else name
        fill = attrs.get("_FillValue")
        attr = tiledb.Attr(name=attr_name, dtype=values.dtype, filters=tiledb.FilterList([tiledb.ZstdFilter()]))
        if fill is not None:
            attr.fill = fill
        uri = os.path.join(path, name)
        tiledb.Array.create(uri, tiledb.ArraySchema(domain=domain, attrs=[attr], sparse=False))
        with tiledb.open(uri, "w") as a:
            a[...] = values
            for key, value in attrs.items():
                a.meta[key] = np.asarray(value) if isinstance(value, (list, np.ndarray)) else value
        group.add(name, name=name, relative=True)
    group.close()


# -- the lone array: one variable, no coordinates -------------------------------------------
#
# Zarr and TileDB have arrays that are a whole store on their own; NetCDF and HDF5 hold them as
# a file of one variable. Written as each format's users write them: zarr-python 3 and 2 arrays
# (v3: dimension_names and a storage fill, no xarray `_FillValue`; v2: `_ARRAY_DIMENSIONS` and a
# fill_value, which is xarray's `_FillValue`), a tiledb-py array whose own metadata keys are
# TileDB-CF's `__tiledb_attr.tas.KEY`, an h5py dataset without dimension scales.

LONE_GLOBALS = {"title": "one array", "version": 2}


def lone_tas():
    y, x = np.meshgrid(np.arange(NY), np.arange(NX), indexing="ij")
    tas = (280.0 + 3.0 * y - x).astype("f4")
    tas[1, 2] = np.nan
    tas[3, 0] = FILL
    attrs = {"_FillValue": FILL, "units": "K", "long_name": "temperature", "valid_range": np.array([150.0, 350.0], dtype="f4")}
    return tas, attrs


def make_lone_nc(path):
    import netCDF4

    tas, attrs = lone_tas()
    attrs = dict(attrs)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts(LONE_GLOBALS)
        nc.createDimension("y", NY)
        nc.createDimension("x", NX)
        v = nc.createVariable("tas", "f4", ("y", "x"), fill_value=attrs.pop("_FillValue"), chunksizes=(1, NX))
        v.set_auto_maskandscale(False)
        v.setncatts(attrs)
        v[...] = tas


def make_lone_h5(path):
    import h5py

    tas, attrs = lone_tas()
    with h5py.File(path, "w") as f:
        f.attrs.update(LONE_GLOBALS)
        d = f.create_dataset("tas", data=tas, chunks=(1, NX), compression="gzip", fillvalue=FILL)
        d.attrs.update(attrs)


def make_lone_zarr(path):
    import zarr

    tas, attrs = lone_tas()
    attrs = {k: attr_value(v) for k, v in attrs.items() if k != "_FillValue"}
    a = zarr.create_array(path, shape=tas.shape, chunks=(1, NX), dtype="f4", fill_value=FILL, dimension_names=["y", "x"], attributes=attrs)
    a[...] = tas


def make_lone_zarr2(path):
    """Run by zarr-python 2's python."""
    import zarr

    tas, attrs = lone_tas()
    a = zarr.open_array(path, mode="w", shape=tas.shape, chunks=(1, NX), dtype="f4", fill_value=FILL)
    a[...] = tas
    a.attrs.update({k: attr_value(v) for k, v in attrs.items() if k != "_FillValue"})
    a.attrs["_ARRAY_DIMENSIONS"] = ["y", "x"]


def make_lone_tdb(path):
    import tiledb

    tas, attrs = lone_tas()
    domain = tiledb.Domain(
        tiledb.Dim(name="y", domain=(0, NY - 1), tile=1, dtype=np.uint64),
        tiledb.Dim(name="x", domain=(0, NX - 1), tile=NX, dtype=np.uint64),
    )
    attr = tiledb.Attr(name="tas", dtype="f4", filters=tiledb.FilterList([tiledb.ZstdFilter()]))
    attr.fill = FILL
    tiledb.Array.create(path, tiledb.ArraySchema(domain=domain, attrs=[attr], sparse=False))
    with tiledb.open(path, "w") as a:
        a[...] = tas
        for key, value in LONE_GLOBALS.items():
            a.meta[key] = value
        for key, value in attrs.items():
            a.meta[f"{TILEDB_ATTR}tas.{key}"] = value


def make(fmt, path, kind="dataset"):
    if kind == "lone":
        if fmt == "zarr2":
            run = subprocess.run([zarr2_python(), __file__, "make-lone-zarr2", path], capture_output=True, text=True)
            if run.returncode != 0:
                fail(f"zarr-python 2 cannot write {path}:\n{run.stderr}")
            return
        {"nc": make_lone_nc, "h5": make_lone_h5, "zarr": make_lone_zarr, "tdb": make_lone_tdb}[fmt](path)
        return
    {
        "nc": make_nc,
        "h5": make_h5,
        "zarr": lambda p: make_zarr(p, 3),
        "zarr2": lambda p: make_zarr(p, 2),
        "tdb": make_tdb,
    }[fmt](path)


# -- normalised views ----------------------------------------------------------------------
#
# A view is {"attrs": {...}, "vars": {name: {"dims", "dtype", "values", "attrs", "chunks"}},
# "coords": set of names}. Attribute values are normalised to str, int, float or a list of
# int/float, so one view compares to another whatever the container spells them with.


def attr_value(v):
    if isinstance(v, np.ndarray):
        v = v.tolist() if v.size != 1 else v.reshape(()).item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, (list, tuple)):
        items = [attr_value(x) for x in v]
        return items[0] if len(items) == 1 else items
    return v


def attrs_of(mapping, skip=()):
    return {k: attr_value(v) for k, v in mapping.items() if k not in skip}


def attr_types(mapping, skip=()):
    """The numpy types of numeric attributes, for readers that keep them (netCDF4-python, h5py)."""
    return {
        k: str(np.asarray(v).dtype)
        for k, v in mapping.items()
        if k not in skip and isinstance(v, (np.ndarray, np.generic)) and np.asarray(v).dtype.kind in "biuf"
    }


def coords_by_name(variables):
    """Coordinates by the NetCDF convention: 1-d variables named after their dimension."""
    return {n for n, v in variables.items() if list(v["dims"]) == [n]}


def nc_view(path):
    import netCDF4

    out = {}
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        for name, v in nc.variables.items():
            out[name] = {
                "dims": list(v.dimensions),
                "dtype": str(v.dtype),
                "values": np.asarray(v[...]),
                "attrs": attrs_of({k: v.getncattr(k) for k in v.ncattrs()}),
                "attr_types": attr_types({k: v.getncattr(k) for k in v.ncattrs()}),
                # None in classic files, "contiguous" in NetCDF-4 ones.
                "chunks": list(v.chunking()) if isinstance(v.chunking(), list) else None,
                "encoding": {"filters": v.filters(), "endian": v.endian()},
            }
        attrs = attrs_of({k: nc.getncattr(k) for k in nc.ncattrs()})
        types = attr_types({k: nc.getncattr(k) for k in nc.ncattrs()})
        unlimited = sorted(d for d, dim in nc.dimensions.items() if dim.isunlimited())
    return {"attrs": attrs, "attr_types": types, "vars": out, "coords": coords_by_name(out), "unlimited": unlimited}


# HDF5's dimension-scale bookkeeping and netCDF-4's private attributes: the structure, not data.
H5_INTERNAL = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates", "_NCProperties", "_nc3_strict"}


def h5_view(path):
    import h5py
    import hdf5plugin  # noqa: F401  (zstd, filter 32015)

    out = {}
    coords = set()
    with h5py.File(path, "r") as f:
        items = []
        f.visititems(lambda name, node: items.append((name, node)) if isinstance(node, h5py.Dataset) else None)
        for name, d in items:
            if attr_value(d.attrs.get("NAME", b"")).startswith(PHONY_SCALE.rstrip(".")):
                continue  # a dimension, not a variable (netCDF-4's convention)
            is_scale = d.attrs.get("CLASS") is not None and attr_value(d.attrs["CLASS"]) == "DIMENSION_SCALE"
            dims = []
            for i, dim in enumerate(d.dims):
                if is_scale and d.ndim == 1:
                    # A scale is not attached to itself: it is its own dimension.
                    label = attr_value(d.attrs.get("NAME", b""))
                    own = name.rsplit("/", 1)[-1]
                    dims.append(own if not label or label.startswith("This is a netCDF dimension") else label)
                    continue
                if len(dim) == 0:
                    dims.append(f"phony_dim_{i}")
                    continue
                scale = dim[0]
                label = scale.attrs.get("NAME", b"")
                label = attr_value(label)
                # netCDF-4's scale of a dimension without a variable carries this text as NAME.
                if not label or label.startswith("This is a netCDF dimension"):
                    label = scale.name.rsplit("/", 1)[-1]
                dims.append(label)
            if is_scale:
                coords.add(name)
            out[name] = {
                "dims": dims,
                "dtype": str(d.dtype),
                "values": d[...],
                "attrs": attrs_of(d.attrs, H5_INTERNAL),
                "attr_types": attr_types(d.attrs, H5_INTERNAL),
                "chunks": list(d.chunks) if d.chunks else None,
                "encoding": {
                    "compression": d.compression,
                    "compression_opts": d.compression_opts,
                    "shuffle": d.shuffle,
                    "fletcher32": d.fletcher32,
                    "fillvalue": repr(d.fillvalue),
                },
            }
        attrs = attrs_of(f.attrs, H5_INTERNAL)
        types = attr_types(f.attrs, H5_INTERNAL)
    return {"attrs": attrs, "attr_types": types, "vars": out, "coords": coords}


def decode_v3_fill(value, dtype):
    """xarray's v3 spelling of `_FillValue` for floats: base64 of the little-endian bytes."""
    if isinstance(value, str) and np.dtype(dtype).kind == "f":
        raw = base64.standard_b64decode(value)
        return float(np.frombuffer(raw, dtype="<f8" if len(raw) == 8 else "<f4")[0])
    return value


def zarr_view(path):
    """zarr-python 3's view. Dims: v3 `dimension_names`, v2 `_ARRAY_DIMENSIONS`; `_FillValue`:
    v3 the attribute (base64 for floats), v2 the array's fill_value, as xarray reads them."""
    import zarr

    node = zarr.open(path, mode="r")
    if isinstance(node, zarr.Array):
        # A lone array: named after its folder, as rechunk names it; it has no dataset attributes.
        arrays, global_attrs = [(lone_name(path), node)], {}
    else:
        arrays, global_attrs = list(node.arrays()), dict(node.attrs)
    out = {}
    for name, a in arrays:
        attrs = dict(a.attrs)
        if a.metadata.zarr_format == 3:
            dims = list(a.metadata.dimension_names or [])
            if "_FillValue" in attrs:
                attrs["_FillValue"] = decode_v3_fill(attrs["_FillValue"], a.dtype)
        else:
            dims = list(attrs.pop("_ARRAY_DIMENSIONS", []))
            if a.metadata.fill_value is not None:
                attrs["_FillValue"] = a.metadata.fill_value
        out[name] = {
            "dims": dims,
            "dtype": str(a.dtype),
            "values": a[...],
            "attrs": attrs_of(attrs),
            "chunks": list(a.chunks),
            "encoding": {
                "format": a.metadata.zarr_format,
                "compressors": repr(a.compressors),
                "filters": repr(a.filters),
                "serializer": repr(a.serializer),
                "fill_value": repr(a.metadata.fill_value),
                "order": a.order,
                "separator": repr(getattr(a.metadata, "dimension_separator", None) or a.metadata.chunk_key_encoding),
            },
        }
    return {"attrs": attrs_of(global_attrs), "vars": out, "coords": coords_by_name(out)}


def lone_name(path):
    """The name rechunk gives a lone array: its folder's, without the extension."""
    last = os.path.basename(os.path.normpath(path))
    for ending in (".zarr", ".tdb", ".tiledb"):
        last = last.removesuffix(ending)
    return last


def zarr2_view_json(path):
    """zarr-python 2's view (run by its own python), as JSON on stdout."""
    import zarr

    if not zarr.__version__.startswith("2."):
        fail(f"zarr2-view needs zarr-python 2, this python has zarr {zarr.__version__}")
    node = zarr.open(path, mode="r")
    if isinstance(node, zarr.Array):
        arrays, global_attrs = [(lone_name(path), node)], {}
    else:
        group = zarr.open_consolidated(path, mode="r")
        arrays, global_attrs = list(group.arrays()), dict(group.attrs)
    out = {}
    for name, a in arrays:
        attrs = dict(a.attrs)
        dims = attrs.pop("_ARRAY_DIMENSIONS", [])
        if a.fill_value is not None:
            attrs["_FillValue"] = a.fill_value
        out[name] = {
            "dims": dims,
            "dtype": str(a.dtype),
            "values": base64.standard_b64encode(np.ascontiguousarray(a[...]).tobytes()).decode(),
            "shape": list(a.shape),
            "attrs": {k: attr_value(v) for k, v in attrs.items()},
            "chunks": list(a.chunks),
        }
    json.dump({"attrs": {k: attr_value(v) for k, v in global_attrs.items()}, "vars": out}, sys.stdout)


def zarr2_python():
    path = os.environ.get("RECHUNKER_PYTHON_ZARR2") or os.path.join(
        os.path.dirname(__file__), "..", "..", ".venv-zarr2", "bin", "python"
    )
    if not os.path.exists(path):
        fail(f"{path} is missing: run `cargo xtask setup` to install zarr-python 2")
    return path


def zarr2_view(path):
    run = subprocess.run([zarr2_python(), __file__, "zarr2-view", path], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"zarr-python 2 cannot read {path}:\n{run.stderr}")
    view = json.loads(run.stdout)
    for v in view["vars"].values():
        raw = base64.standard_b64decode(v["values"])
        v["values"] = np.frombuffer(raw, dtype=v["dtype"]).reshape(v["shape"])
    view["coords"] = coords_by_name(view["vars"])
    return view


TILEDB_ATTR = "__tiledb_attr."

# GAP (reported, issue #13 item 1): `rechunk a.tdb b.tdb` writes its own filters (zstd:3),
# uint64 dimensions and domains from 0, not the source's (the TileDB source gives no
# `encoding`), so TileDB -> TileDB compares fill values and orders only. True once it keeps them.
TILEDB_KEEPS_FILTERS_AND_DOMAINS = True


def tdb_view(path):
    """tiledb-py's view: a group of arrays (a variable per attribute) or a lone array. Metadata
    `__tiledb_attr.A.KEY` belong to the variable of attribute A (TileDB-CF)."""
    import tiledb

    def read_array(uri, member_name, out):
        with tiledb.open(uri) as a:
            schema = a.schema
            dims = [schema.domain.dim(i).name for i in range(schema.domain.ndim)]
            meta = {k: a.meta[k] for k in a.meta.keys()}
            values = a[...]
            names = [schema.attr(i).name for i in range(schema.nattr)]
            plain = {k: v for k, v in meta.items() if not k.startswith(TILEDB_ATTR)}
            for attr in names:
                name = member_name if len(names) == 1 or attr == "" else attr
                own = {
                    k[len(TILEDB_ATTR) + len(attr) + 1 :]: v
                    for k, v in meta.items()
                    if k.startswith(f"{TILEDB_ATTR}{attr}.")
                }
                tile = [int(schema.domain.dim(i).tile) for i in range(schema.domain.ndim)]
                out[name] = {
                    "dims": dims,
                    "dtype": str(schema.attr(attr).dtype),
                    "values": values[attr] if isinstance(values, dict) else values,
                    "attrs": attrs_of({**(plain if len(names) == 1 else {}), **own}),
                    "chunks": tile,
                    "encoding": {
                        "fill": repr(schema.attr(attr).fill),
                        "cell_order": schema.cell_order,
                        "tile_order": schema.tile_order,
                        **(
                            {
                                "filters": repr(schema.attr(attr).filters),
                                "dim_types": [str(schema.domain.dim(i).dtype) for i in range(schema.domain.ndim)],
                                "domains": [repr(schema.domain.dim(i).domain) for i in range(schema.domain.ndim)],
                            }
                            if TILEDB_KEEPS_FILTERS_AND_DOMAINS
                            else {}
                        ),
                    },
                }
            return plain

    out = {}
    if tiledb.object_type(path) == "group":
        g = tiledb.Group(path)
        attrs = attrs_of({k: g.meta[k] for k in g.meta.keys()})
        for member in g:
            read_array(member.uri, member.name or member.uri.rstrip("/").rsplit("/", 1)[-1], out)
        g.close()
    else:
        plain = read_array(path, lone_name(path), out)
        attrs = attrs_of(plain)
        for v in out.values():
            v["attrs"] = {k: x for k, x in v["attrs"].items() if k not in attrs}
    return {"attrs": attrs, "vars": out, "coords": coords_by_name(out)}


READERS = {"nc": nc_view, "h5": h5_view, "zarr": zarr_view, "zarr2": zarr_view, "tdb": tdb_view}

# -- comparison ----------------------------------------------------------------------------


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def same_attr(a, b):
    """Equal values of the same kind (text, integer, real). Widths are not compared: Zarr
    attributes are JSON, which has one integer and one real type."""
    if isinstance(a, list) != isinstance(b, list):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_attr(x, y) for x, y in zip(a, b))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int) != isinstance(b, int):
        return False
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def compare_attrs(where, a, b, problems, types_a=None, types_b=None):
    """Attributes: the same keys and values; numeric types too where both readers see them."""
    for key in sorted(set(types_a or {}) & set(types_b or {})):
        if types_a[key] != types_b[key]:
            problems.append(f"{where}: attribute {key} is {types_a[key]} in the source, {types_b[key]} in the target")
    for key in sorted(set(a) | set(b)):
        if key not in b:
            problems.append(f"{where}: attribute {key}={a[key]!r} missing")
        elif key not in a:
            problems.append(f"{where}: attribute {key}={b[key]!r} added")
        elif not same_attr(a[key], b[key]):
            problems.append(f"{where}: attribute {key} is {a[key]!r} in the source, {b[key]!r} in the target")


def same_encoding(a, b):
    """Allowance: shuffle on one-byte elements is the identity, and rechunk's NetCDF and HDF5
    targets leave it out (`item_size() > 1`), so it is not compared for them."""
    a, b = dict(a), dict(b)
    for enc in (a, b):
        if isinstance(enc.get("filters"), dict):
            enc["filters"] = {**enc["filters"], "shuffle": None}
        if "shuffle" in enc:
            enc["shuffle"] = None
    return a == b


def compare_views(label, src, dst, problems, same_format=False):
    compare_attrs(f"{label} global", src["attrs"], dst["attrs"], problems, src.get("attr_types"), dst.get("attr_types"))
    if "unlimited" in src and "unlimited" in dst and src["unlimited"] != dst["unlimited"]:
        problems.append(f"{label}: unlimited dimensions {src['unlimited']} in the source, {dst['unlimited']} in the target")
    missing = sorted(set(src["vars"]) - set(dst["vars"]))
    added = sorted(set(dst["vars"]) - set(src["vars"]))
    if missing or added:
        problems.append(f"{label}: variables missing {missing}, added {added}")
    for name in sorted(set(src["vars"]) & set(dst["vars"])):
        a, b = src["vars"][name], dst["vars"][name]
        where = f"{label} {name}"
        if a["dims"] != b["dims"]:
            problems.append(f"{where}: dims {a['dims']} in the source, {b['dims']} in the target")
        if a["dtype"] != b["dtype"]:
            problems.append(f"{where}: dtype {a['dtype']} in the source, {b['dtype']} in the target")
        x, y = np.asarray(a["values"]), np.asarray(b["values"])
        if x.shape != y.shape:
            problems.append(f"{where}: shape {x.shape} in the source, {y.shape} in the target")
        elif not np.array_equal(x, y, equal_nan=x.dtype.kind == "f" and y.dtype.kind == "f"):
            diff = np.argwhere(~((x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else (x == y)))
            first = tuple(diff[0]) if len(diff) else ()
            problems.append(f"{where}: values differ first at {first}: {x[first]!r} vs {y[first]!r}")
        compare_attrs(where, a["attrs"], b["attrs"], problems, a.get("attr_types"), b.get("attr_types"))
        # Same format, no options: the source's encoding is kept (issue #13 item 1).
        if same_format and a.get("encoding") != b.get("encoding"):
            one_byte = np.dtype(a["dtype"]).itemsize == 1
            if not (one_byte and same_encoding(a["encoding"], b["encoding"])):
                problems.append(f"{where}: encoding {a['encoding']} in the source, {b['encoding']} in the target")
    if src["coords"] != dst["coords"]:
        problems.append(f"{label}: coordinates {sorted(src['coords'])} in the source, {sorted(dst['coords'])} in the target")


def cf_decoded(var):
    """What xarray shows for a source variable: `_FillValue` masked to NaN (ints become floats),
    packed values unpacked."""
    values = np.asarray(var["values"])
    attrs = var["attrs"]
    fill = attrs.get("_FillValue")
    if fill is None and "scale_factor" not in attrs:
        return values
    out = values.astype("f8")
    if fill is not None:
        out[values == fill] = np.nan
    return out * attrs.get("scale_factor", 1.0) + attrs.get("add_offset", 0.0)


def check_xarray(label, src_format, dst_format, dst, src, problems):
    """The target opens in xarray with no options and shows the source's variables, dims,
    coordinates and CF-decoded values (times stay encoded: decoding them is xarray's business)."""
    import xarray as xr

    if dst_format.startswith("zarr"):
        import zarr

        if isinstance(zarr.open(dst, mode="r"), zarr.Array):
            # Allowance: xarray opens groups only. A lone array stays a lone array (issue #13
            # item 1), which xarray could no more open as the source; only from one.
            if not (src_format.startswith("zarr") and len(src["vars"]) == 1):
                problems.append(f"{label}: a lone Zarr array came from a source that was not one")
            return
    try:
        ds = xr.open_zarr(dst) if dst_format.startswith("zarr") else xr.open_dataset(dst)
    except Exception as e:  # noqa: BLE001  (any failure to open is the finding)
        problems.append(f"{label}: xarray cannot open {dst} without options: {type(e).__name__}: {e}")
        return
    with ds:
        names = set(ds.variables)
        if names != set(src["vars"]):
            problems.append(f"{label}: xarray shows variables {sorted(names)}, the source has {sorted(src['vars'])}")
        if set(ds.coords) != src["coords"]:
            problems.append(f"{label}: xarray shows coordinates {sorted(ds.coords)}, the source has {sorted(src['coords'])}")
        for name in sorted(names & set(src["vars"])):
            var = src["vars"][name]
            want_dims = var["dims"][:-1] if np.dtype(var["dtype"]) == np.dtype("S1") and ds[name].dtype.kind == "S" and ds[name].dtype.itemsize > 1 else var["dims"]
            if list(ds[name].dims) != want_dims:
                problems.append(f"{label} {name}: xarray dims {list(ds[name].dims)}, source {var['dims']}")
                continue
            if ds[name].dtype.kind == "M":
                continue
            want, got = cf_decoded(var), ds[name].values
            if want.dtype == np.dtype("S1") and got.dtype.kind == "S" and got.ndim == want.ndim - 1:
                # xarray joins `char` arrays along their last dimension into strings.
                want = want.view(f"S{want.shape[-1]}")[..., 0]
            same = (
                np.allclose(want, got, rtol=1e-6, atol=0, equal_nan=True)
                if want.dtype.kind == "f" and want.shape == got.shape
                else np.array_equal(want, got)
            )
            if not same:
                problems.append(f"{label} {name}: xarray decodes other values than the source holds")


def check_chunks(label, view, specs, problems):
    for spec in specs:
        name, chunks = spec.split("=")
        want = [int(c) for c in chunks.split(",")]
        got = view["vars"].get(name, {}).get("chunks")
        if got != want:
            problems.append(f"{label} {name}: chunks {got}, wanted {want}")


def compare(src_format, src, *targets):
    """Compares SRC with every target (`DST_FORMAT DST CHUNKS...`, several separated by `+`);
    fails with every problem, each naming its pair."""
    source = READERS[src_format](src)
    problems = []
    groups, group = [], []
    for arg in targets:
        if arg == "+":
            groups.append(group)
            group = []
        else:
            group.append(arg)
    groups.append(group)
    for dst_format, dst, *chunk_specs in groups:
        label = f"{src_format} -> {dst_format}"
        try:
            compare_pair(label, src_format, source, dst_format, dst, chunk_specs, problems)
        except Exception as e:  # noqa: BLE001  (a reader that cannot read the target is the finding)
            problems.append(f"{label}: reading {dst} failed: {type(e).__name__}: {e}")
    if problems:
        fail("\n".join(problems))


def compare_pair(label, src_format, source, dst_format, dst, chunk_specs, problems):
    # Encodings are compared once, by the zarr-python 3 reader that read the source.
    readers = [("", READERS[dst_format], src_format == dst_format)]
    if dst_format == "zarr2":
        readers.append((" (zarr-python 2)", zarr2_view, False))
    for reader_label, reader, same_format in readers:
        target = reader(dst)
        compare_views(label + reader_label, source, target, problems, same_format)
        check_chunks(label + reader_label, target, chunk_specs, problems)
    if dst_format in ("nc", "zarr", "zarr2"):
        check_xarray(label, src_format, dst_format, dst, source, problems)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "make":
        make(*args)
    elif command == "compare":
        compare(*args)
    elif command == "make-lone-zarr2":
        make_lone_zarr2(*args)
    elif command == "zarr2-view":
        zarr2_view_json(*args)
        return
    else:
        fail(f"unknown command {command}")
    print("ok")


if __name__ == "__main__":
    main()
