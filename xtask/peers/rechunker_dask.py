"""Peer for `cargo xtask bench`: Python rechunker 0.5 with dask's threaded scheduler.

usage: rechunker_dask.py SOURCE_ZARR_V2 TARGET TEMP MAX_MEM CHUNKS THREADS
CHUNKS is comma-separated, one size per dimension of the array `tas`.
"""

import shutil
import sys

import dask
import zarr
from rechunker import rechunk

source, target, temp, max_mem, chunks, threads = sys.argv[1:7]
for path in (target, temp):
    shutil.rmtree(path, ignore_errors=True)
array = zarr.open_group(source, mode="r")["tas"]
target_chunks = tuple(int(c) for c in chunks.split(","))
plan = rechunk(array, target_chunks, max_mem, target, temp_store=temp)
with dask.config.set(scheduler="threads", num_workers=int(threads)):
    plan.execute()
shutil.rmtree(temp, ignore_errors=True)
