"""Checks a benchmark output against its source with zarr-python: same values, chunk by chunk.

usage: check_same.py SOURCE_GROUP TARGET [TARGET_IS_ARRAY]
"""

import sys

import numpy as np
import zarr

source, target = sys.argv[1:3]
a = zarr.open_group(source, mode="r")["tas"]
node = zarr.open(target, mode="r")
b = node if isinstance(node, zarr.Array) else node["tas"]
assert a.shape == b.shape, (a.shape, b.shape)
step = max(1, a.shape[0] // 20)
for t in range(0, a.shape[0], step):
    x, y = a[t : t + step], b[t : t + step]
    if not np.array_equal(x, y, equal_nan=True):
        sys.exit(f"values differ in time {t}:{t + step}")
print("identical")
