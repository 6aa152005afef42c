"""Writes the raw values of every variable of a NetCDF file to an .npz, for readers that live in
another venv (zarr-python 2): `nc_dump.py SOURCE.nc OUT.npz [SKIP,...]`. Values are as stored (no
masking, no unpacking); a variable of group `g` is saved as `g/name`; the variables named in SKIP
(those `rechunk --skip-unsupported` leaves out) are not."""

import sys

import netCDF4
import numpy as np


def walk(group, prefix, skip, out):
    group.set_auto_maskandscale(False)
    group.set_auto_chartostring(False)
    for name, var in group.variables.items():
        if prefix + name not in skip:
            out[prefix + name] = np.asarray(var[...])
    for name, child in group.groups.items():
        walk(child, prefix + name + "/", skip, out)


def main():
    source, target = sys.argv[1:3]
    skip = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else set()
    out = {}
    with netCDF4.Dataset(source) as ds:
        walk(ds, "", skip, out)
    np.savez(target, **out)
    print("ok")


if __name__ == "__main__":
    main()
