"""Peer for `cargo xtask bench`: Python rechunker 0.5 with dask's threaded scheduler.

The target is written with the codec ours writes (blosc zstd 3 + shuffle by default, or blosc
lz4 5 + shuffle, zarr-python 2's default), so both encode the same output; the intermediate keeps
zarr's default, blosc lz4 (fast), rechunker's best case.

usage: rechunker_dask.py SOURCE_ZARR_V2 TARGET TEMP MAX_MEM CHUNKS THREADS [zstd|lz4]
CHUNKS is comma-separated, one size per dimension of the array `tas`.
"""

import shutil
import sys

import dask
import zarr
from numcodecs import Blosc
from rechunker import rechunk

TEMP_CODEC = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)

source, target, temp, max_mem, chunks, threads = sys.argv[1:7]
cname = sys.argv[7] if len(sys.argv) > 7 else "zstd"
TARGET_CODEC = Blosc(cname=cname, clevel=3 if cname == "zstd" else 5, shuffle=Blosc.SHUFFLE)
for path in (target, temp):
    shutil.rmtree(path, ignore_errors=True)
array = zarr.open_group(source, mode="r")["tas"]
target_chunks = tuple(int(c) for c in chunks.split(","))
plan = rechunk(
    array,
    target_chunks,
    max_mem,
    target,
    target_options={"compressor": TARGET_CODEC},
    temp_store=temp,
    temp_options={"compressor": TEMP_CODEC},
)
with dask.config.set(scheduler="threads", num_workers=int(threads)):
    plan.execute()
shutil.rmtree(temp, ignore_errors=True)
