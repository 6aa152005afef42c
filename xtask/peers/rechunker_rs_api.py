"""Our Python package in `cargo xtask bench python`: the canonical case through
`rechunker_rs.rechunk(...).execute()`, on this process's threads or on a Dask LocalCluster of
two single-threaded worker processes.

usage: rechunker_rs_api.py threads|dask SOURCE TARGET CHUNKS MAX_MEM
CHUNKS is what `rechunk --chunks` takes (`time=1000,lat=24,lon=24`). Prints one JSON line: the
seconds spent importing, in rechunk() (planning) and in execute() (for Dask: with the
cluster's start).
"""

import json
import shutil
import sys
import time


def main() -> None:
    started = time.perf_counter()
    import rechunker_rs

    mode, source, target, chunks, max_mem = sys.argv[1:6]
    imported = time.perf_counter()
    shutil.rmtree(target, ignore_errors=True)
    target_chunks = {k: int(v) for k, v in (kv.split("=") for kv in chunks.split(","))}
    plan = rechunker_rs.rechunk(source, target_chunks, max_mem, target, progress=False)
    planned = time.perf_counter()
    if mode == "threads":
        plan.execute()
    elif mode == "dask":
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                plan.execute(executor=client)
    else:
        sys.exit(f"unknown mode {mode}: use threads or dask")
    done = time.perf_counter()
    print(json.dumps({"import": round(imported - started, 2), "plan": round(planned - imported, 2),
                      "execute": round(done - planned, 2)}))


# Dask's worker processes are spawned and import this file again: only the parent runs.
if __name__ == "__main__":
    main()
