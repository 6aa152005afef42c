"""Rechunk N-d arrays (Zarr, NetCDF, HDF5, TileDB) into a new chunk layout within a memory limit.

rechunker's workflow, run by the Rust ``rechunker`` library::

    import rechunker_rs
    plan = rechunker_rs.rechunk("era5.zarr", {"time": -1, "lat": 32, "lon": 32},
                                "2GB", "era5-series.zarr")
    plan            # stages, tasks, bytes and memory per task (a table in Jupyter)
    target = plan.execute()   # the new array/group, opened with zarr (or xarray)

Errors are the exceptions Python users expect, with the library's message: ``ValueError`` for
chunks or options that do not fit, ``FileNotFoundError`` for a missing source, ``MemoryError``
when ``max_mem`` cannot hold one chunk, ``KeyboardInterrupt`` when Ctrl-C stopped a run (rerun
with ``resume=True`` to continue it).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from . import _native

__all__ = ["rechunk", "Plan", "ProgressCallback"]

#: ``progress(event, info)``: ``event`` is ``"run_started"``, ``"stage_started"``,
#: ``"task_finished"`` (``info`` is ``(tasks, bytes)``) or ``"stage_finished"``.
ProgressCallback = Callable[[str, Any], None]

#: The target options the library takes (by their Python names).
TARGET_OPTIONS = ("codec", "zarr_format", "shards", "netcdf_format")


def _location(obj: Any, what: str) -> str:
    """The path or URL of a source or store given as a string, a path, a zarr object or store."""
    if isinstance(obj, (str, os.PathLike)):
        return os.fspath(obj)
    # xarray.Dataset: the file or store it was opened from.
    encoding = getattr(obj, "encoding", None)
    if isinstance(encoding, Mapping) and hasattr(obj, "data_vars"):
        source = encoding.get("source")
        if source is None:
            raise ValueError(
                f"{what}: this xarray.Dataset does not say where it was opened from "
                "(no encoding['source']); write it to a file first, or pass the path"
            )
        return os.fspath(source)
    # zarr.Array / zarr.Group (zarr-python 3): the store's root plus the node's path.
    store = getattr(obj, "store", None)
    if store is not None and hasattr(obj, "path"):
        base = _store_location(store, what)
        path = (obj.path or "").strip("/")
        return f"{base.rstrip('/')}/{path}" if path else base
    # A zarr store itself.
    if hasattr(obj, "root") or hasattr(obj, "fs"):
        return _store_location(obj, what)
    raise ValueError(
        f"{what}: {type(obj).__name__} is not a path, URL, zarr.Array, zarr.Group or "
        "xarray.Dataset"
    )


def _store_location(store: Any, what: str) -> str:
    root = getattr(store, "root", None)  # LocalStore
    if root is not None:
        return os.fspath(root)
    fs = getattr(store, "fs", None)  # FsspecStore (s3://...)
    if fs is not None:
        protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
        path = str(getattr(store, "path", "")).lstrip("/")
        return path if protocol in ("file", "local") else f"{protocol}://{path}"
    raise ValueError(
        f"{what}: a {type(store).__name__} has no location rechunk can open; use a "
        "local or object-store (s3://, gs://, az://) zarr store"
    )


def _size(chunk: Any, where: str) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int):
        raise ValueError(
            f"target_chunks: {chunk!r} {where} is not a chunk size; use a positive integer or -1 "
            "for the whole dimension"
        )
    return chunk


def _one_spec(chunks: Any, where: str) -> Any:
    """One variable's chunks as the JSON value the library takes."""
    if chunks is None:
        return None
    if isinstance(chunks, str):
        return chunks
    if isinstance(chunks, (tuple, list)):
        for c in chunks:
            if c is None:
                raise ValueError(
                    f"target_chunks {tuple(chunks)!r} {where}: None by position cannot be "
                    "kept; give chunks by dimension name ({'time': 100}) to leave the others"
                )
        return [_size(c, where) for c in chunks]
    if isinstance(chunks, Mapping):
        named = {str(k): _size(v, where) for k, v in chunks.items() if v is not None}
        return named or None
    raise ValueError(
        f"target_chunks {chunks!r} {where}: give a tuple, a dict by dimension name, or None"
    )


def chunk_spec(target_chunks: Any) -> str:
    """rechunker's ``target_chunks`` as the library's chunk spec (its JSON form).

    A tuple (by position), a dict by dimension name (``None`` leaves a dimension as it is), a
    dict by variable of those (``None`` leaves the variable as it is), ``None`` (keep every
    chunk), or a string in ``rechunk --chunks`` syntax.
    """
    if target_chunks is None:
        return "keep"
    if isinstance(target_chunks, str):
        return _native.check_chunks(target_chunks)
    if isinstance(target_chunks, Mapping):
        values = list(target_chunks.values())
        nested = [v is None or isinstance(v, (Mapping, tuple, list, str)) for v in values]
        if values and all(nested) and any(v is not None for v in values):
            spec = {str(k): _one_spec(v, f"for `{k}`") for k, v in target_chunks.items()}
            return _native.check_chunks(json.dumps(spec))
        if any(isinstance(v, (Mapping, tuple, list, str)) for v in values):
            raise ValueError(
                "target_chunks mixes dimension sizes and per-variable chunks; give either "
                "{'time': 100, 'lat': 10} or {'tas': {'time': 100}, 'pr': None}"
            )
    return _native.check_chunks(json.dumps({"*": _one_spec(target_chunks, "")}))


def _max_mem(max_mem: int | str) -> int:
    if isinstance(max_mem, str):
        return _native.parse_size(max_mem)
    if isinstance(max_mem, bool) or not isinstance(max_mem, int) or max_mem <= 0:
        raise ValueError(f"max_mem {max_mem!r}: give a number of bytes (>0) or a size like '2GB'")
    return max_mem


def _target_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (options or {}).items():
        if isinstance(value, Mapping):
            raise ValueError(
                f"target_options[{name!r}] is a dict: options here are for the whole target "
                f"({', '.join(TARGET_OPTIONS)}), not per variable"
            )
        key = str(name).replace("_", "-")
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            value = ",".join(str(v) for v in value)
        out[key] = str(value)
    return out


class _Tqdm:
    """Progress as tqdm bars, one per stage of each array: in bytes, or in tasks where the
    events count tasks only (the Dask executor's, ``info["unit"] == "task"``)."""

    def __init__(self, tqdm: Any) -> None:
        self.tqdm = tqdm
        self.bar: Any = None
        self.by_tasks = False

    def __call__(self, event: str, info: Any) -> None:
        if event == "stage_started":
            desc = f"{info['array']} stage {info['stage'] + 1}/{info['stages']}"
            remaining_tasks = info["tasks"] - info["already_done"]
            self.by_tasks = info.get("unit") == "task"
            if self.by_tasks:
                self.bar = self.tqdm(total=remaining_tasks, unit="task", desc=desc)
            else:
                self.bar = self.tqdm(
                    total=info["bytes"] * remaining_tasks // max(info["tasks"], 1),
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=desc,
                )
        elif event == "task_finished" and self.bar is not None:
            self.bar.update(info[0] if self.by_tasks else info[1])
        elif event == "stage_finished" and self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress(progress: ProgressCallback | bool | None) -> ProgressCallback | None:
    if progress is False:
        return None
    if callable(progress):
        return progress
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return _Tqdm(tqdm)


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class Plan:
    """A planned rechunk run. Nothing is written until :meth:`execute` (or :meth:`save`).

    ``repr(plan)`` says what ``rechunk plan`` prints; in Jupyter the plan shows as a table of
    stages (tasks, blocks, reads, writes, bytes, memory per task).
    """

    def __init__(
        self,
        native: _native.NativePlan,
        kind: str,
        executor: Any,
        progress: ProgressCallback | bool | None,
    ) -> None:
        self._native = native
        self._kind = kind
        self._executor = executor
        self._progress = progress
        self.report: dict[str, Any] | None = None

    @property
    def source(self) -> str:
        """The source's location (absolute)."""
        return self._native.source

    @property
    def target(self) -> str:
        """The target's location (absolute)."""
        return self._native.target

    @property
    def num_stages(self) -> int:
        """Stages of the longest array plan (1: source to target directly)."""
        return self._native.num_stages

    @property
    def max_mem(self) -> int:
        """The memory budget in bytes."""
        return self._native.max_mem

    def stages(self) -> list[dict[str, Any]]:
        """Every stage of every array: tasks, block shape, reads, writes, bytes, task memory."""
        return json.loads(self._native.stage_rows_json())

    def to_json(self) -> str:
        """The plan as JSON (what ``rechunk plan --json`` prints)."""
        return self._native.to_json()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes a plan file for a distributed run, as ``rechunk plan -o PATH`` does.

        Workers then run ``rechunk run --plan PATH --stage S --shard I/N`` (or the Dask
        executor does), and ``rechunk finalize --plan PATH`` ends the run.
        """
        self._native.save(os.fspath(path))

    def execute(
        self,
        executor: Any = None,
        progress: ProgressCallback | bool | None = None,
    ) -> Any:
        """Runs the plan and returns the target, opened.

        ``executor``: ``"threads"`` (this process) or a ``dask.distributed.Client`` (each stage's
        tasks as Dask tasks; see :mod:`rechunker_rs.dask`); default: the one given to
        :func:`rechunk`. ``progress``: a callback ``progress(event, info)``, ``False`` for none;
        default: a tqdm bar when tqdm is installed.

        Returns the target as zarr-python opens it for a Zarr target (the array, when the
        source was one array), as xarray opens it when the source was an ``xarray.Dataset``,
        else its path.
        """
        executor = self._executor if executor is None else executor
        progress = self._progress if progress is None else progress
        if executor is None or executor == "threads":
            self.report = self._native.execute(_progress(progress))
        elif hasattr(executor, "submit") and hasattr(executor, "gather"):
            from . import dask as _dask

            self.report = _dask.execute(self, executor, _progress(progress))
        else:
            raise ValueError(
                f"executor {executor!r}: use 'threads' or a dask.distributed.Client"
            )
        return self._open_target()

    def _open_target(self) -> Any:
        target = self.target
        is_zarr = target.rstrip("/").endswith(".zarr") or self._kind.startswith("zarr")
        if self._kind == "xarray":
            import xarray as xr

            if target.rstrip("/").endswith(".zarr"):
                return xr.open_zarr(target)
            return xr.open_dataset(target)
        if is_zarr and target.rstrip("/").endswith(".zarr"):
            import zarr

            return zarr.open(target, mode="r")
        return target

    def __repr__(self) -> str:
        return self._native.describe().rstrip("\n")

    def _repr_html_(self) -> str:
        rows = self.stages()
        e = html.escape
        head = (
            f"<p><b>rechunk plan</b>: {e(self.source)} &rarr; {e(self.target)}, "
            f"max_mem {e(_fmt_bytes(self.max_mem))}, {self.num_stages} stage(s)</p>"
        )
        cols = [
            "array", "dtype", "shape", "source chunks", "target chunks", "stage", "tasks",
            "blocks (per task)", "reads", "writes", "bytes", "memory per task",
        ]
        out = [head, "<table>", "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
        for r in rows:
            first = r["stage"] == 0
            reads = f"{r['reads']} {'source chunks' if first else 'pieces'}"
            last = r["max_piece_bytes"] is None
            writes = f"{r['writes']} {'target chunks' if last else 'pieces'}"
            cells = [
                r["array"], r["dtype"], tuple(r["shape"]), tuple(r["source_chunks"]),
                tuple(r["target_chunks"]), f"{r['stage'] + 1}/{r['stages']}", r["tasks"],
                tuple(r["block_shape"]), reads, writes, _fmt_bytes(r["bytes"]),
                _fmt_bytes(r["task_memory"]),
            ]
            out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
        out.append("</table>")
        return "\n".join(out)


def rechunk(
    source: Any,
    target_chunks: Any,
    max_mem: int | str,
    target_store: Any,
    target_options: Mapping[str, Any] | None = None,
    temp_store: Any = None,
    executor: Any = "threads",
    *,
    threads: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: ProgressCallback | bool | None = None,
) -> Plan:
    """Plans rechunking ``source`` into ``target_store``; call ``.execute()`` on the result.

    ``source``: a path or URL of any supported format (Zarr, NetCDF, HDF5, TileDB, raw), a
    ``zarr.Array`` or ``zarr.Group`` (its store's location), or an ``xarray.Dataset`` opened
    from a file or store (its ``encoding["source"]``).

    ``target_chunks``: a tuple (by position; -1 is the whole dimension), a dict by dimension
    name, a dict by variable of those (``None``: leave that variable's chunks as they are),
    or a ``rechunk --chunks`` string such as ``"auto"``.

    ``max_mem``: the peak memory of the whole run, in bytes or as ``"2GB"``.

    ``target_store``: where the result goes (a path or URL, or a zarr store); its format
    follows from its extension (``.zarr``, ``.nc``, ``.h5``, ``.tdb``).

    ``target_options``: options for the whole target: ``codec`` (``"zstd:3"``,
    ``"blosc:lz4:5:shuffle"``, ``"gzip:6"``, ``"none"``), ``zarr_format`` (2 or 3),
    ``shards``, ``netcdf_format``.

    ``temp_store``: where the scratch folder goes (default: beside the target); it is
    removed at the end.

    ``executor``: ``"threads"`` or a ``dask.distributed.Client``.

    ``overwrite`` replaces a target an earlier rechunk wrote; ``resume`` continues an
    interrupted run into it.
    """
    kind = "path"
    if hasattr(source, "data_vars") and hasattr(source, "encoding"):
        kind = "xarray"
    elif hasattr(source, "shape") and hasattr(source, "store"):
        kind = "zarr-array"
    elif hasattr(source, "store"):
        kind = "zarr-group"
    native = _native.plan(
        _location(source, "source"),
        _location(target_store, "target_store"),
        chunk_spec(target_chunks),
        _max_mem(max_mem),
        threads=threads,
        options=_target_options(target_options),
        scratch=None if temp_store is None else _location(temp_store, "temp_store"),
        overwrite=overwrite,
        resume=resume,
    )
    return Plan(native, kind, executor, progress)
