"""Peer for `cargo xtask bench cloud`: Python rechunker 0.5 with dask's threaded scheduler,
reading and writing S3 through s3fs (the endpoint from AWS_ENDPOINT_URL, as ours reads it).

usage: rechunker_s3.py SOURCE_URL TARGET_URL TEMP_URL MAX_MEM CHUNKS THREADS
URLs are s3://bucket/prefix or local paths; CHUNKS is comma-separated, one size per dimension
of `tas`.
"""

import os
import shutil
import sys

import dask
import s3fs
import zarr
from numcodecs import Blosc
from rechunker import rechunk

CODEC = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)

source, target, temp, max_mem, chunks, threads = sys.argv[1:7]
fs = s3fs.S3FileSystem(
    client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
    key=os.environ.get("AWS_ACCESS_KEY_ID"),
    secret=os.environ.get("AWS_SECRET_ACCESS_KEY"),
)


def store(url):
    """An S3 mapping for s3:// URLs, else the local path (zarr's directory store)."""
    return s3fs.S3Map(url, s3=fs) if url.startswith("s3://") else url


array = zarr.open_group(store(source), mode="r")["tas"]
target_chunks = tuple(int(c) for c in chunks.split(","))
plan = rechunk(
    array,
    target_chunks,
    max_mem,
    store(target),
    target_options={"compressor": CODEC},
    temp_store=store(temp),
    temp_options={"compressor": CODEC},
)
with dask.config.set(scheduler="threads", num_workers=int(threads)):
    plan.execute()
if temp.startswith("s3://"):
    if fs.exists(temp):
        fs.rm(temp, recursive=True)
elif os.path.exists(temp):
    shutil.rmtree(temp)
