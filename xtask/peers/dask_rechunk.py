"""Peer for `cargo xtask bench`: dask.array.rechunk with the task-based algorithm, threaded.

Reads the Zarr v2 array `tas`, rechunks it with `method="tasks"` and writes it with blosc lz4 5
+ shuffle (zarr-python 2's default, the source's codec), as a user of dask alone would.

usage: dask_rechunk.py SOURCE_ZARR_V2 TARGET CHUNKS THREADS
CHUNKS is comma-separated, one size per dimension.
"""

import shutil
import sys

import dask
import dask.array as da
import zarr
from numcodecs import Blosc

source, target, chunks, threads = sys.argv[1:5]
shutil.rmtree(target, ignore_errors=True)
array = da.from_zarr(zarr.open_group(source, mode="r")["tas"])
target_chunks = tuple(int(c) for c in chunks.split(","))
out = zarr.open_group(target, mode="w")
z = out.create_dataset(
    "tas",
    shape=array.shape,
    chunks=target_chunks,
    dtype=array.dtype,
    compressor=Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
)
with dask.config.set(scheduler="threads", num_workers=int(threads)):
    da.store(array.rechunk(target_chunks, method="tasks"), z, lock=False)
