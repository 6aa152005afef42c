"""Peer for `cargo xtask bench`: Python rechunker 0.5 on `xarray.open_dataset` of a NetCDF file,
dask threads (2), to Zarr v2.

The target is written with the codec ours writes (blosc zstd 3 + shuffle), so both encode the
same output; the intermediate keeps zarr's default, blosc lz4 (fast), rechunker's best case.

usage: rechunker_xarray.py SOURCE_NC TARGET TEMP MAX_MEM T THREADS
"""

import shutil
import sys

import dask
import xarray as xr
from numcodecs import Blosc
from rechunker import rechunk

TARGET_CODEC = Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE)
TEMP_CODEC = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)

source, target, temp, max_mem, time, threads = sys.argv[1:7]
for path in (target, temp):
    shutil.rmtree(path, ignore_errors=True)
ds = xr.open_dataset(source, chunks={"time": 1})
target_chunks = {"tas": {"time": int(time), "lat": 24, "lon": 24}, "time": None, "lat": None, "lon": None}
target_chunks = {k: v for k, v in target_chunks.items() if k in ds.variables}
variables = list(ds.variables)
plan = rechunk(
    ds,
    target_chunks,
    max_mem,
    target,
    target_options={name: {"compressor": TARGET_CODEC} for name in variables},
    temp_store=temp,
    temp_options={name: {"compressor": TEMP_CODEC} for name in variables},
)
with dask.config.set(scheduler="threads", num_workers=int(threads)):
    plan.execute()
shutil.rmtree(temp, ignore_errors=True)
