"""The rechunker_rs package against real zarr-python, xarray and netCDF4: every result is read
back and compared with the source values with numpy. Run by `cargo xtask test` (the wheel
installed into .venv-py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import xarray as xr
import zarr

import rechunker_rs


def budget(source, target_chunks, data_mib: float, **kw) -> int:
    """max_mem leaving about `data_mib` MiB for data after what this process holds (the
    Python interpreter and its libraries count against max_mem, as in the CLI)."""
    # Planned twice: the first plan's one-time allocations (its rate probes' thread pool, lazy
    # imports) are then part of what the second one measures, as they are of the real plan's.
    for _ in range(2):
        probe = rechunker_rs.rechunk(source, target_chunks, "8GB", "/nonexistent/probe.zarr", **kw)
    return json.loads(probe.to_json())["memory_reserve"] + int(data_mib * 2**20)


def values(node) -> np.ndarray:
    return np.asarray(node[...])


@pytest.mark.parametrize(
    "shape,chunks,target,dtype",
    [
        ((1000,), (10,), (250,), "int16"),
        ((60, 50), (1, 50), (60, 7), "float32"),
        ((24, 20, 16), (1, 20, 16), (24, 5, 4), "int64"),
        ((6, 8, 10, 12), (1, 1, 10, 12), (6, 8, 3, 3), "float64"),
    ],
)
def test_arrays_of_1_to_4_dimensions_and_int_float_dtypes(tmp_path, shape, chunks, target, dtype):
    src = zarr.create_array(tmp_path / "in.zarr", shape=shape, chunks=chunks, dtype=dtype)
    data = (np.arange(np.prod(shape)) % 30000).reshape(shape).astype(dtype)
    src[...] = data
    plan = rechunker_rs.rechunk(src, target, "1GB", tmp_path / "out.zarr", progress=False)
    out = plan.execute()
    assert isinstance(out, zarr.Array)
    assert out.chunks == target
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(values(out), data)


def test_a_group_by_path_with_fill_values_and_per_variable_chunks(tmp_path):
    root = zarr.open_group(tmp_path / "in.zarr", mode="w")
    a = root.create_array("a", shape=(30, 40), chunks=(1, 40), dtype="f4", fill_value=-9.5)
    b = root.create_array("b", shape=(30,), chunks=(5,), dtype="i4", fill_value=7)
    a[:10] = np.arange(400, dtype="f4").reshape(10, 40)  # the rest stays the fill value
    b[:] = np.arange(30, dtype="i4")
    plan = rechunker_rs.rechunk(
        str(tmp_path / "in.zarr"), {"a": {"dim_0": 30, "dim_1": 8}, "b": None}, 2**30,
        str(tmp_path / "out.zarr"), progress=False,
    )
    out = plan.execute()
    assert isinstance(out, zarr.Group)
    assert out["a"].chunks == (30, 8)
    assert out["b"].chunks == (5,), "None leaves the variable's chunks as they are"
    assert out["a"].fill_value == -9.5 and out["b"].fill_value == 7
    np.testing.assert_array_equal(values(out["a"]), values(a))
    np.testing.assert_array_equal(values(out["b"]), values(b))


def test_target_chunks_as_dict_by_dimension_with_none_and_as_none(tmp_path):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(20, 30), chunks=(1, 30), dtype="u1")
    src[...] = np.arange(600).reshape(20, 30) % 251
    dims = rechunker_rs.chunk_spec({"dim_0": -1, "dim_1": None})
    assert dims == "dim_0=-1"
    out = rechunker_rs.rechunk(src, {"dim_0": -1, "dim_1": None}, "1GB", tmp_path / "a.zarr", progress=False).execute()
    assert out.chunks == (20, 30)
    kept = rechunker_rs.rechunk(src, None, "1GB", tmp_path / "b.zarr", progress=False).execute()
    assert kept.chunks == (1, 30)
    for o in (out, kept):
        np.testing.assert_array_equal(values(o), values(src))


@pytest.mark.parametrize("data_mibs,stages", [((1.0,), 2), ((0.5, 0.45, 0.4, 0.35), 3)])
def test_a_small_max_mem_forces_two_and_three_stages(tmp_path, data_mibs, stages):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(400, 100, 100), chunks=(1, 100, 100), dtype="f4")
    data = np.random.default_rng(1).random((400, 100, 100), dtype="f4")
    src[...] = data
    target = (400, 1, 1)
    # The planner weighs stages against piece sizes, so the budget for three stages is found
    # among a few near 0.4 MiB of data.
    plans = []
    for data_mib in data_mibs:
        max_mem = budget(src, target, data_mib, threads=1)
        plans.append(rechunker_rs.rechunk(src, target, max_mem, tmp_path / "out.zarr", threads=1, progress=False))
        if plans[-1].num_stages == stages:
            break
    plan = plans[-1]
    assert plan.num_stages == stages, [repr(p) for p in plans]
    assert len(plan.stages()) == stages
    assert f"stage {stages}/{stages}" in repr(plan)
    out = plan.execute()
    assert out.chunks == target
    np.testing.assert_array_equal(values(out), data)


# rechunker 0.5 needs zarr-python 2, so it runs in its own venv (`.venv-zarr2`).
RECHUNKER_05 = textwrap.dedent(
    """
    import json, sys, zarr, rechunker
    src, chunks, max_mem, target, temp = sys.argv[1:]
    source = zarr.open(src, mode="r")
    chunks = json.loads(chunks)
    chunks = tuple(chunks) if isinstance(chunks, list) else {k: tuple(v) for k, v in chunks.items()}
    plan = rechunker.rechunk(source, chunks, int(max_mem), target, temp_store=temp)
    plan.execute()
    print(repr(plan))
    """
)


def run_rechunker_05(source, target_chunks, max_mem: int, target, temp) -> str:
    """rechunker 0.5 (with Dask's threads) on the same case, in the zarr-python 2 venv."""
    python = os.environ.get("RECHUNKER_PYTHON_ZARR2")
    assert python, "set RECHUNKER_PYTHON_ZARR2 to the venv holding rechunker 0.5 (cargo xtask test does)"
    out = subprocess.run(
        [python, "-c", RECHUNKER_05, str(source), json.dumps(target_chunks), str(max_mem), str(target), str(temp)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("kind", ["array", "group"])
def test_the_same_case_through_rechunker_0_5_gives_the_same_result(tmp_path, kind):
    rng = np.random.default_rng(5)
    a = rng.integers(-1000, 1000, size=(200, 60, 50), dtype="i4")
    b = rng.random((200, 30)).astype("f8")
    if kind == "array":
        src = zarr.create_array(tmp_path / "in.zarr", shape=a.shape, chunks=(1, 60, 50), dtype="i4",
                                fill_value=-1, zarr_format=2)
        src[:150] = a[:150]  # the rest stays the fill value
        a[150:] = -1
        target_chunks = [200, 6, 5]
        expected = {None: a}
    else:
        root = zarr.open_group(tmp_path / "in.zarr", mode="w", zarr_format=2)
        root.create_array("a", shape=a.shape, chunks=(1, 60, 50), dtype="i4")[...] = a
        root.create_array("b", shape=b.shape, chunks=(1, 30), dtype="f8")[...] = b
        target_chunks = {"a": [200, 6, 5], "b": [200, 10]}
        expected = {"a": a, "b": b}
    # About 1 MiB to work in for both tools, so both go through their temporary store.
    max_mem_05 = 2**20
    theirs = run_rechunker_05(tmp_path / "in.zarr", target_chunks, max_mem_05, tmp_path / "theirs.zarr",
                              tmp_path / "theirs-tmp.zarr")
    assert "Intermediate" in theirs, theirs
    ours_chunks = tuple(target_chunks) if kind == "array" else {k: tuple(v) for k, v in target_chunks.items()}
    source = zarr.open(tmp_path / "in.zarr", mode="r")
    plan = rechunker_rs.rechunk(source, ours_chunks, budget(source, ours_chunks, 1.0, threads=1),
                                tmp_path / "ours.zarr", temp_store=tmp_path / "ours-tmp", threads=1, progress=False)
    assert plan.num_stages >= 2, repr(plan)
    plan.execute()
    ours = zarr.open(tmp_path / "ours.zarr", mode="r")
    theirs = zarr.open(tmp_path / "theirs.zarr", mode="r")
    for name, data in expected.items():
        o, t = (ours, theirs) if name is None else (ours[name], theirs[name])
        assert o.shape == t.shape and o.dtype == t.dtype and o.chunks == t.chunks, (o, t)
        np.testing.assert_array_equal(values(o), values(t))
        np.testing.assert_array_equal(values(o), data)


def test_xarray_dataset_with_coords_and_attrs_round_trips_identical(tmp_path):
    ds = xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), np.random.default_rng(2).random((48, 6, 8)).astype("f4"),
                    {"units": "K", "long_name": "air temperature"}),
            "pr": (("time", "lat", "lon"), np.arange(48 * 6 * 8, dtype="i4").reshape(48, 6, 8)),
        },
        coords={"time": np.arange(48), "lat": np.linspace(-60, 60, 6), "lon": np.linspace(0, 315, 8)},
        attrs={"title": "test", "history": "made by pytest"},
    )
    ds.to_netcdf(tmp_path / "in.nc")
    with xr.open_dataset(tmp_path / "in.nc") as src:
        plan = rechunker_rs.rechunk(src, {"time": -1, "lat": 3, "lon": 4}, "1GB", tmp_path / "out.zarr", progress=False)
        out = plan.execute()
        assert isinstance(out, xr.Dataset)
        assert out["tas"].encoding["chunks"] == (48, 3, 4)
        xr.testing.assert_identical(out.load(), src.load())


def test_a_netcdf_source_by_path(tmp_path):
    import netCDF4

    with netCDF4.Dataset(tmp_path / "in.nc", "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 12)
        v = nc.createVariable("v", "f8", ("time", "x"), chunksizes=(1, 12), fill_value=-1.0)
        v[0:20, :] = np.arange(240.0).reshape(20, 12)
    out = rechunker_rs.rechunk(tmp_path / "in.nc", {"v": (20, 3)}, "1GB", tmp_path / "out.zarr", progress=False).execute()
    assert out["v"].chunks == (20, 3)
    np.testing.assert_array_equal(values(out["v"]), np.arange(240.0).reshape(20, 12))


def test_a_netcdf_target_is_returned_as_its_path(tmp_path):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(10, 10), chunks=(1, 10), dtype="i2")
    src[...] = np.arange(100).reshape(10, 10)
    out = rechunker_rs.rechunk(src, (10, 5), "1GB", tmp_path / "out.nc", progress=False).execute()
    assert out == str(tmp_path / "out.nc")
    import netCDF4

    with netCDF4.Dataset(out) as nc:
        (name,) = nc.variables
        np.testing.assert_array_equal(nc.variables[name][:], np.arange(100).reshape(10, 10))


def test_plan_repr_html_save_and_the_rechunk_command(tmp_path):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(40, 30), chunks=(1, 30), dtype="f4")
    src[...] = np.arange(1200, dtype="f4").reshape(40, 30)
    plan = rechunker_rs.rechunk(src, (40, 5), "1GB", tmp_path / "out.zarr")
    text = repr(plan)
    assert "stage 1/1: 1 tasks" in text and "per task" in text, text
    html = plan._repr_html_()
    assert "<table>" in html and "memory per task" in html and "40 source chunks" in html, html
    plan.save(tmp_path / "plan.json")
    assert json.loads((tmp_path / "plan.json").read_text())["target"] == str(tmp_path / "out.zarr")
    rechunk = os.path.join(os.path.dirname(sys.executable), "rechunk")
    for cmd in (
        [rechunk, "run", "--plan", str(tmp_path / "plan.json"), "--stage", "0", "-q"],
        [rechunk, "finalize", "--plan", str(tmp_path / "plan.json")],
        [rechunk, "verify", str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr")],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd}: {done.stderr}"
    assert "identical" in done.stdout
    bad = subprocess.run([rechunk, "inspect", str(tmp_path / "missing.zarr")], capture_output=True, text=True)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


def test_progress_goes_to_a_callback(tmp_path):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(40, 30), chunks=(1, 30), dtype="f4")
    events = []
    rechunker_rs.rechunk(src, (40, 5), "1GB", tmp_path / "out.zarr").execute(
        progress=lambda event, info: events.append((event, info))
    )
    names = [e for e, _ in events]
    assert names[0] == "run_started" and names[1] == "stage_started" and names[-1] == "stage_finished"
    assert sum(info[1] for e, info in events if e == "task_finished") == 40 * 30 * 4


def test_progress_is_a_tqdm_bar_by_default(tmp_path, capsys):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(40, 30), chunks=(1, 30), dtype="f4")
    rechunker_rs.rechunk(src, (40, 5), "1GB", tmp_path / "out.zarr").execute()
    err = capsys.readouterr().err
    assert "stage 1/1" in err and "100%" in err, err


def test_errors_are_the_python_exceptions_with_the_library_message(tmp_path):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(100, 100), chunks=(100, 1), dtype="f8")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rechunker_rs.rechunk(tmp_path / "missing.zarr", (1, 1), "1GB", tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="chunk size 0"):
        rechunker_rs.rechunk(src, (0, 10), "1GB", tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="not a chunk size"):
        rechunker_rs.rechunk(src, ("a", 10), "1GB", tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="nosuchdim"):
        rechunker_rs.rechunk(src, {"nosuchdim": 10}, "1GB", tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="codec"):
        rechunker_rs.rechunk(src, (1, 100), "1GB", tmp_path / "o.zarr", target_options={"codec": "nonsense"})
    with pytest.raises(ValueError, match="netcdf-format"):
        rechunker_rs.rechunk(src, (1, 100), "1GB", tmp_path / "o.zarr", target_options={"netcdf_format": "classic"})
    with pytest.raises(ValueError, match="not a size"):
        rechunker_rs.rechunk(src, (1, 100), "lots", tmp_path / "o.zarr")
    # One source chunk of 100 x 100 doubles (80 KB) cannot fit in a 16 KiB data budget.
    big = zarr.create_array(tmp_path / "big.zarr", shape=(100, 100), chunks=(100, 100), dtype="f8")
    with pytest.raises(MemoryError, match="max-mem"):
        rechunker_rs.rechunk(big, (1, 100), budget(big, (1, 100), 1 / 64, threads=1), tmp_path / "o.zarr", threads=1)
    assert not (tmp_path / "o.zarr").exists()


def test_ctrl_c_stops_a_run_and_a_rerun_with_resume_finishes_it(tmp_path):
    src = zarr.create_array(tmp_path / "in.zarr", shape=(400, 50, 50), chunks=(1, 50, 50), dtype="f4")
    data = np.random.default_rng(3).random((400, 50, 50), dtype="f4")
    src[...] = data
    # A real SIGINT, sent by the process to itself once three tasks are done: the run stops at
    # its next task, the journal keeps what finished, and a rerun with resume=True ends it.
    script = textwrap.dedent(f"""
        import json, os, signal, sys, rechunker_rs
        src, dst = {str(tmp_path / 'in.zarr')!r}, {str(tmp_path / 'out.zarr')!r}
        # The budget of the first run (a few MiB of data: many tasks), repeated by the rerun.
        budget_file = {str(tmp_path / 'max_mem')!r}
        if not {{resume}}:
            # Planned twice: the first plan's one-time allocations (its rate probes' thread
            # pool, Python's imports) are then part of what the second one measures.
            for _ in range(2):
                probe = rechunker_rs.rechunk(src, (400, 1, 1), "8GB", "/nonexistent/p.zarr", threads=1)
            with open(budget_file, "w") as f:
                f.write(str(json.loads(probe.to_json())["memory_reserve"] + (1 << 20)))
        max_mem = int(open(budget_file).read())
        tasks = 0
        def progress(event, info):
            global tasks
            if event == "task_finished":
                tasks += info[0]
                if tasks >= 3 and not {{resume}}:
                    os.kill(os.getpid(), signal.SIGINT)
        try:
            plan = rechunker_rs.rechunk(src, (400, 1, 1), max_mem, dst, threads=1, resume={{resume}})
            print("stages", plan.num_stages, flush=True)
            plan.execute(progress=progress)
        except KeyboardInterrupt as e:
            print("interrupted:", e, flush=True)
            sys.exit(3)
        print("finished", plan.report["tasks_run"], plan.report["tasks_skipped"], flush=True)
    """)
    stopped = subprocess.run([sys.executable, "-c", script.format(resume=False)], capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "interrupted" in stopped.stdout and "resume" in stopped.stdout, stopped.stdout
    assert (tmp_path / "out.zarr.rechunk-scratch").exists()
    done = subprocess.run([sys.executable, "-c", script.format(resume=True)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "finished" in done.stdout, done.stdout + done.stderr
    skipped = int(done.stdout.split()[-1])
    assert skipped >= 3, f"the rerun skips the tasks finished before Ctrl-C: {done.stdout}"
    np.testing.assert_array_equal(values(zarr.open_array(tmp_path / "out.zarr")), data)
    assert not (tmp_path / "out.zarr.rechunk-scratch").exists()


def test_the_dask_executor_on_a_two_process_local_cluster(tmp_path):
    from distributed import Client, LocalCluster

    src = zarr.create_array(tmp_path / "in.zarr", shape=(200, 50, 50), chunks=(1, 50, 50), dtype="f4")
    data = np.random.default_rng(4).random((200, 50, 50), dtype="f4")
    src[...] = data
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
        # Workers hold less than this process, which the reserve in the plan measured.
        max_mem = budget(src, (200, 1, 1), 1.0, threads=1)
        plan = rechunker_rs.rechunk(src, (200, 1, 1), max_mem, tmp_path / "out.zarr", threads=1)
        assert plan.num_stages >= 2, repr(plan)
        events = []
        out = plan.execute(executor=client, progress=lambda event, info: events.append((event, info)))
        assert plan.report["tasks_run"] == sum(r["tasks"] for r in plan.stages())
        assert len(plan.report["shards"]) == 2 * plan.num_stages
    # Progress read from the journal: every stage started, its tasks counted, and finished.
    for stage in range(plan.num_stages):
        tasks = sum(r["tasks"] for r in plan.stages() if r["stage"] == stage)
        (started,) = [i for e, i in events if e == "stage_started" and i["stage"] == stage]
        assert started["tasks"] == tasks and started["already_done"] == 0 and started["unit"] == "task"
        (finished,) = [i for e, i in events if e == "stage_finished" and i["stage"] == stage]
        assert finished["tasks_run"] == tasks, finished
        at = events.index(("stage_started", started))
        until = events.index(("stage_finished", finished))
        counted = sum(i[0] for e, i in events[at:until] if e == "task_finished")
        assert counted == tasks, events
    np.testing.assert_array_equal(values(out), data)
    assert not (tmp_path / "out.zarr.rechunk-plan.json").exists()
    assert not (tmp_path / "out.zarr.rechunk-scratch").exists()


def test_a_dask_worker_killed_mid_stage_is_replaced_and_the_result_is_identical(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    src = zarr.create_array(tmp_path / "in.zarr", shape=(200, 50, 50), chunks=(1, 50, 50), dtype="f4")
    data = np.random.default_rng(5).random((200, 50, 50), dtype="f4")
    src[...] = data
    plan = rechunker_rs.rechunk(src, (200, 1, 1), budget(src, (200, 1, 1), 0.25, threads=1),
                                tmp_path / "out.zarr", threads=1)
    first = plan.stages()[0]["tasks"]
    assert first >= 4, repr(plan)
    # Slow tasks (the test wheel's fault hook) make each worker's share of the first stage last
    # 3 s, long enough to kill a worker in the middle of it. The workers inherit the variable.
    monkeypatch.setenv("RECHUNKER_TASK_DELAY_MS", str(3000 // (first // 2)))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
        victim = next(iter(client.run(os.getpid).values()))
        killer = threading.Timer(1.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        out = plan.execute(executor=client)
        killer.join()
        assert victim not in client.run(os.getpid).values(), "the worker was not killed"
        # The lost shard ran again, skipping the tasks the killed worker had journaled.
        assert plan.report["tasks_skipped"] > 0, plan.report
        total = sum(r["tasks"] for r in plan.stages())
        assert plan.report["tasks_run"] + plan.report["tasks_skipped"] >= total, plan.report
    np.testing.assert_array_equal(values(out), data)
    assert not (tmp_path / "out.zarr.rechunk-scratch").exists()
