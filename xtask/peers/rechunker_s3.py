"""Peer for `cargo xtask bench cloud`: Python rechunker 0.5 with dask's threaded scheduler,
reading and writing S3 through s3fs (the endpoint from AWS_ENDPOINT_URL, as ours reads it).

usage: rechunker_s3.py SOURCE_URL TARGET_URL TEMP_URL MAX_MEM CHUNKS THREADS
URLs are s3://bucket/prefix; CHUNKS is comma-separated, one size per dimension of `tas`.
"""

import os
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
array = zarr.open_group(s3fs.S3Map(source, s3=fs), mode="r")["tas"]
target_chunks = tuple(int(c) for c in chunks.split(","))
plan = rechunk(
    array,
    target_chunks,
    max_mem,
    s3fs.S3Map(target, s3=fs),
    target_options={"compressor": CODEC},
    temp_store=s3fs.S3Map(temp, s3=fs),
    temp_options={"compressor": CODEC},
)
with dask.config.set(scheduler="threads", num_workers=int(threads)):
    plan.execute()
if fs.exists(temp):
    fs.rm(temp, recursive=True)
