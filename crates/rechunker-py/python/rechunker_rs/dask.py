"""Dask as the engine: a plan's stages as Dask tasks on a ``dask.distributed`` cluster.

The plan is saved as a plan file (as ``rechunk plan -o`` writes it) beside the target; each
stage is split into one Dask task per worker, each running shard ``i/n`` of the stage through
the library (``PlanFile::run_stage``, what ``rechunk run --plan --stage --shard`` runs), and the
next stage starts when every shard is done. The scratch journal is the barrier: a task of a
lost worker is resubmitted by Dask and skips what the journal shows finished, and a rerun of
the same plan file resumes. ``max_mem`` is the budget of each worker process, as rechunker's
``max_mem`` is each task's. Workers must see the plan file, the source, the target and the
scratch at the same paths (one machine, a shared file system, or object-store URLs).

Progress comes from the same journal: while a stage runs, this process reads it twice a second
and reports the tasks finished, as events of the threaded run's callback protocol (counted in
tasks, not bytes: ``info["unit"] == "task"``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from . import _native

ProgressCallback = Callable[[str, Any], None]

#: Seconds between two reads of the journal for progress.
POLL_SECONDS = 0.5


def plan_file_path(target: str) -> str:
    """Where the Dask executor saves the plan file of a run into ``target``."""
    return target.rstrip("/") + ".rechunk-plan.json"


def run_plan_file(
    path: str,
    client: Any,
    shards: int | None = None,
    retries: int = 3,
    progress: ProgressCallback | None = None,
) -> list[dict[str, Any]]:
    """Runs every stage of the plan file at ``path`` on ``client``, then finalizes it.

    ``shards``: Dask tasks per stage (default: the cluster's workers). ``progress``: called as
    ``progress(event, info)`` with ``stage_started``, ``task_finished`` (``(tasks, 0)``) and
    ``stage_finished``, read from the journal. Returns the reports of every shard of every stage.
    """
    if shards is None:
        shards = max(1, len(client.scheduler_info().get("workers", {})))
    reports: list[dict[str, Any]] = []
    stages = _native.plan_file_stages(path)
    for stage in range(stages):
        started = time.perf_counter()
        if progress is not None:
            # Read before the tasks start, so "already done" means done by an earlier run.
            before = _stage_info(path, stage, stages)
            progress("stage_started", before)
        futures = [
            client.submit(
                _native.run_stage, path, stage, i, shards, pure=False, retries=retries
            )
            for i in range(shards)
        ]
        if progress is not None:
            _follow_stage(path, stage, stages, futures, progress, before["already_done"])
        done = client.gather(futures)
        reports.extend(done)
        if progress is not None:
            info = _stage_info(path, stage, stages)
            info["tasks_run"] = sum(r["tasks_run"] for r in done)
            info["tasks_skipped"] = sum(r["tasks_skipped"] for r in done)
            info["bytes_moved"] = sum(r["moved_bytes"] for r in done)
            info["seconds"] = time.perf_counter() - started
            progress("stage_finished", info)
    _native.finalize(path)
    return reports


def _stage_info(path: str, stage: int, stages: int) -> dict[str, Any]:
    """What the journal says of ``stage``: its arrays, tasks and tasks done."""
    status = _native.plan_file_status(path) or []
    rows = status[stage] if stage < len(status) else []
    names = [name for name, _, _ in rows]
    return {
        "array": names[0] if len(names) == 1 else f"{len(names)} arrays",
        "stage": stage,
        "stages": stages,
        "tasks": sum(tasks for _, _, tasks in rows),
        "already_done": sum(done for _, done, _ in rows),
        "unit": "task",
    }


def _follow_stage(
    path: str, stage: int, stages: int, futures: list[Any], progress: ProgressCallback, reported: int
) -> None:
    """Reports the stage's tasks as the journal records them (beyond the ``reported`` done
    when it started), until its futures are done."""
    while True:
        finished = all(f.done() for f in futures)
        done = _stage_info(path, stage, stages)["already_done"]
        if done > reported:
            progress("task_finished", (done - reported, 0))
            reported = done
        if finished:
            return
        time.sleep(POLL_SECONDS)


def execute(plan: Any, client: Any, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Saves ``plan`` as a plan file beside its target and runs it on ``client``."""
    path = plan_file_path(plan.target)
    if "://" in path:
        raise ValueError(
            f"the Dask executor writes its plan file beside the target, which must then be a "
            f"local path; save the plan with plan.save(PATH) on a shared file system and call "
            f"rechunker_rs.dask.run_plan_file(PATH, client)"
        )
    plan.save(path)
    reports = run_plan_file(path, client, progress=progress)
    # The plan file is ours (plan.save refuses to replace anything but a plan file).
    os.remove(path)
    return {
        "tasks_run": sum(r["tasks_run"] for r in reports),
        "tasks_skipped": sum(r["tasks_skipped"] for r in reports),
        "moved_bytes": sum(r["moved_bytes"] for r in reports),
        "data_bytes": reports[0]["data_bytes"] if reports else 0,
        "shards": reports,
    }
