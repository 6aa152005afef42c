"""tiledb-py opens DST as SRC was, tile extents aside (issue #13: keep what the user had).

Usage: tiledb_keep_check.py SRC DST
       tiledb_keep_check.py --make URI DIM_TYPE   (writes the test array described in make())

SRC and DST must both be dense arrays, or both groups whose members (by name, recursively)
are such arrays. For every array: same dimensions (name, domain, type), attributes (name,
type, fill value, filters with their options), cell and tile order, values and metadata.
Group metadata must match too. Prints "ok" when everything matches.
"""

import sys

import numpy as np
import tiledb


def same_value(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def same_meta(where, src_meta, dst_meta):
    src_keys, dst_keys = sorted(src_meta.keys()), sorted(dst_meta.keys())
    assert src_keys == dst_keys, f"{where}: metadata keys {src_keys} != {dst_keys}"
    for k in src_keys:
        s, d = src_meta[k], dst_meta[k]
        assert type(s) is type(d), f"{where}: metadata {k}: {s!r} vs {d!r}"
        if isinstance(s, (str, bytes)):
            assert s == d, f"{where}: metadata {k}: {s!r} != {d!r}"
        else:
            assert same_value(s, d), f"{where}: metadata {k}: {s!r} != {d!r}"


def check_array(src, dst):
    s, d = tiledb.ArraySchema.load(src), tiledb.ArraySchema.load(dst)
    assert not d.sparse, f"{dst} is sparse"
    assert s.domain.ndim == d.domain.ndim, f"{dst}: {d.domain.ndim} dimensions"
    for i in range(s.domain.ndim):
        a, b = s.domain.dim(i), d.domain.dim(i)
        for what in ("name", "domain", "dtype"):
            assert getattr(a, what) == getattr(b, what), (
                f"{dst}: dimension {i} {what}: {getattr(a, what)} != {getattr(b, what)}"
            )
    assert s.nattr == d.nattr, f"{dst}: {d.nattr} attributes, not {s.nattr}"
    for i in range(s.nattr):
        a, b = s.attr(i), d.attr(i)
        assert a.name == b.name, f"{dst}: attribute {i} is {b.name!r}, not {a.name!r}"
        assert a.dtype == b.dtype, f"{dst}: {a.name}: {b.dtype} != {a.dtype}"
        assert same_value(a.fill, b.fill), f"{dst}: {a.name}: fill {b.fill} != {a.fill}"
        assert a.filters == b.filters, f"{dst}: {a.name}: filters {b.filters} != {a.filters}"
    assert s.cell_order == d.cell_order, f"{dst}: cell order {d.cell_order}"
    assert s.tile_order == d.tile_order, f"{dst}: tile order {d.tile_order}"
    with tiledb.open(src) as A, tiledb.open(dst) as B:
        a, b = A[:], B[:]
        if not isinstance(a, dict):
            a, b = {"": a}, {"": b}
        assert sorted(a) == sorted(b), f"{dst}: fields {sorted(b)} != {sorted(a)}"
        for k in a:
            assert same_value(a[k], b[k]), f"{dst}: values of {k!r} differ"
        same_meta(dst, A.meta, B.meta)


def members(uri, prefix=""):
    out = {}
    with tiledb.Group(uri) as g:
        meta = {k: g.meta[k] for k in g.meta.keys()}
        for m in g:
            name = prefix + (m.name or m.uri.rstrip("/").rsplit("/", 1)[-1])
            if m.type == tiledb.Array:
                out[name] = m.uri
            elif m.type == tiledb.Group:
                out.update(members(m.uri, name + "/")[0])
    return out, meta


def make(uri, dim_type):
    """A column-major dense array of three attributes whose filters have options (float
    scale, delta, bit width reduction, a checksum), a fill value, dimensions of `dim_type`
    whose domain spans 0, ragged last tiles, and typed metadata."""
    dt = np.dtype(dim_type)
    dom = tiledb.Domain(
        tiledb.Dim("t", domain=(-3, 33), tile=5, dtype=dt),
        tiledb.Dim("x", domain=(7, 29), tile=4, dtype=dt),
    )
    schema = tiledb.ArraySchema(
        domain=dom,
        cell_order="col-major",
        tile_order="col-major",
        attrs=[
            tiledb.Attr("a", dtype=np.float64, fill=-1.5, filters=tiledb.FilterList(
                [tiledb.FloatScaleFilter(0.5, 1.0, 4), tiledb.ZstdFilter(7)])),
            tiledb.Attr("b", dtype=np.int8, filters=tiledb.FilterList(
                [tiledb.DeltaFilter(), tiledb.GzipFilter(2)])),
            tiledb.Attr("c", dtype=np.uint16, filters=tiledb.FilterList(
                [tiledb.BitWidthReductionFilter(64), tiledb.ChecksumSHA256Filter()])),
        ],
    )
    tiledb.Array.create(uri, schema)
    r = np.random.default_rng(1)
    with tiledb.open(uri, "w") as A:
        A[:] = {
            "a": r.integers(0, 100, (37, 23)).astype(np.float64) / 2,
            "b": r.integers(-100, 100, (37, 23)).astype(np.int8),
            "c": r.integers(0, 60000, (37, 23)).astype(np.uint16),
        }
    with tiledb.open(uri, "w") as A:
        A.meta["answer"] = np.int32(42)
        A.meta["__tiledb_attr.b.units"] = "m"
        A.meta["pair"] = np.array([1.5, 2.5])
    print("ok")


def main():
    if sys.argv[1] == "--make":
        return make(sys.argv[2], sys.argv[3])
    src, dst = sys.argv[1], sys.argv[2]
    kind = tiledb.object_type(src)
    assert tiledb.object_type(dst) == kind, f"{dst} is a {tiledb.object_type(dst)}, not a {kind}"
    if kind == "array":
        check_array(src, dst)
    else:
        (src_members, src_meta), (dst_members, dst_meta) = members(src), members(dst)
        assert sorted(src_members) == sorted(dst_members), (
            f"{dst}: members {sorted(dst_members)} != {sorted(src_members)}"
        )
        same_meta(dst, src_meta, dst_meta)
        for name, uri in src_members.items():
            check_array(uri, dst_members[name])
    print("ok")


if __name__ == "__main__":
    main()
