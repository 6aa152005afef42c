"""Dask as the engine: a plan's stages as Dask tasks on a ``dask.distributed`` cluster.

The plan is saved as a plan file (as ``rechunk plan -o`` writes it) beside the target; each
stage is split into one Dask task per worker, each running shard ``i/n`` of the stage through
the library (``PlanFile::run_stage``, what ``rechunk run --plan --stage --shard`` runs), and the
next stage starts when every shard is done. The scratch journal is the barrier: a task of a
lost worker is resubmitted by Dask and skips what the journal shows finished, and a rerun of
the same plan file resumes. ``max_mem`` is the budget of each worker process, as rechunker's
``max_mem`` is each task's. Workers must see the plan file, the source, the target and the
scratch at the same paths (one machine, a shared file system, or object-store URLs).
"""

from __future__ import annotations

import os
from typing import Any

from . import _native


def plan_file_path(target: str) -> str:
    """Where the Dask executor saves the plan file of a run into ``target``."""
    return target.rstrip("/") + ".rechunk-plan.json"


def run_plan_file(path: str, client: Any, shards: int | None = None, retries: int = 3) -> list[dict[str, Any]]:
    """Runs every stage of the plan file at ``path`` on ``client``, then finalizes it.

    ``shards``: Dask tasks per stage (default: the cluster's workers). Returns the reports of
    every shard of every stage.
    """
    if shards is None:
        shards = max(1, len(client.scheduler_info().get("workers", {})))
    reports: list[dict[str, Any]] = []
    for stage in range(_native.plan_file_stages(path)):
        futures = [
            client.submit(
                _native.run_stage, path, stage, i, shards, pure=False, retries=retries
            )
            for i in range(shards)
        ]
        reports.extend(client.gather(futures))
    _native.finalize(path)
    return reports


def execute(plan: Any, client: Any) -> dict[str, Any]:
    """Saves ``plan`` as a plan file beside its target and runs it on ``client``."""
    path = plan_file_path(plan.target)
    if "://" in path:
        raise ValueError(
            f"the Dask executor writes its plan file beside the target, which must then be a "
            f"local path; save the plan with plan.save(PATH) on a shared file system and call "
            f"rechunker_rs.dask.run_plan_file(PATH, client)"
        )
    plan.save(path)
    reports = run_plan_file(path, client)
    # The plan file is ours (plan.save refuses to replace anything but a plan file).
    os.remove(path)
    return {
        "tasks_run": sum(r["tasks_run"] for r in reports),
        "tasks_skipped": sum(r["tasks_skipped"] for r in reports),
        "moved_bytes": sum(r["moved_bytes"] for r in reports),
        "data_bytes": reports[0]["data_bytes"] if reports else 0,
        "shards": reports,
    }
