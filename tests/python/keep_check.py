"""Zarr arrays for the keep-the-encoding tests (tests/keep_encoding.rs), written by zarr-python.

usage:
  keep_check.py make-v2 PATH
      a lone v2 float32 array (3000, 500) in chunks (7, 500): blosc lz4 + shuffle, `fill_value: null`,
      "/" dimension separator, a user attribute and no `_ARRAY_DIMENSIONS`; the values are
      y * 1000 + x, and one chunk is never written.
The tests judge the rewritten arrays with zarr_check.py. Exit status 0 and "ok" on success.
"""

import sys

import numcodecs
import numpy as np
import zarr


def make_v2(path):
    a = zarr.create_array(
        path,
        shape=(3000, 500),
        chunks=(7, 500),
        dtype="float32",
        zarr_format=2,
        compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
        fill_value=None,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        attributes={"units": "K"},
    )
    y, x = np.meshgrid(np.arange(3000), np.arange(500), indexing="ij")
    values = (y * 1000 + x).astype("float32")
    a[:14] = values[:14]
    a[21:] = values[21:]  # rows 14..20 (one chunk) stay unwritten


def main():
    command, path = sys.argv[1:3]
    if command == "make-v2":
        make_v2(path)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        sys.exit(1)
    print("ok")


main()
