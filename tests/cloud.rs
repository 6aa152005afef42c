//! Object stores as users meet them: the same Zarr -> Zarr run on S3 (moto behind our fault
//! proxy, source, scratch and target all on it) rides out a 20 s stall, a 20 s window of
//! `503 SlowDown` and connections reset at 1% of requests, and ends with a target identical to
//! the clean run's, object for object; a store that stops answering fails `inspect` within the
//! retry budget instead of hanging.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::S3Server;
use rechunker_proxy::{Fault, Proxy};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// moto with buckets `data` and `work`, our proxy in front of it, and a source Zarr array
/// `s3://data/in/tas.zarr` written through moto directly.
struct Cloud {
    s3: S3Server,
    proxy: Proxy,
    raw: String,
    _dir: tempfile::TempDir,
}

impl Cloud {
    fn start() -> Cloud {
        let s3 = S3Server::start(&["data", "work"]);
        let proxy = Proxy::start(&s3.endpoint).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let raw = write_tas(&dir.path().join("tas.raw"), &[400, 60, 60], &[1, 60, 60]);
        let cloud = Cloud {
            s3,
            proxy,
            raw,
            _dir: dir,
        };
        cloud.upload(&cloud.raw, "s3://data/in/tas.zarr");
        cloud
    }

    /// Writes the raw file `raw` to `uri` as Zarr in time slices, through moto directly.
    fn upload(&self, raw: &str, uri: &str) {
        let out = self.rechunk(&[raw, uri, "--chunks", "time=1", "-q"], false);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// Runs `rechunk` with the S3 endpoint moto's own, or the proxy's.
    fn rechunk(&self, args: &[&str], through_proxy: bool) -> std::process::Output {
        self.rechunk_logging(args, through_proxy, "rechunker_store=warn")
    }

    /// Runs `rechunk` like [`Cloud::rechunk`], logging what `filter` (`RECHUNK_LOG`) lets by.
    fn rechunk_logging(
        &self,
        args: &[&str],
        through_proxy: bool,
        filter: &str,
    ) -> std::process::Output {
        let mut env = self.s3.env();
        if through_proxy {
            env[0].1 = self.proxy.endpoint().to_string();
        }
        env.push(("RECHUNK_LOG", filter.into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        rechunk_env(args, &env)
    }

    /// Rechunks the source to `s3://data/{name}` through the proxy, scratch on S3 too;
    /// returns stderr.
    fn run(&self, name: &str) -> String {
        let dst = format!("s3://data/{name}");
        let scratch = format!("s3://work/{name}");
        let args = [
            "s3://data/in/tas.zarr",
            dst.as_str(),
            "--scratch",
            &scratch,
            "--chunks",
            "time=-1,lat=10,lon=10",
            // The process holds 85-100 MiB itself (its binary's resident pages vary with the
            // page cache) plus the chunks planning keeps: room above that for any plan.
            "--max-mem",
            "128MiB",
            "-q",
        ];
        let out = self.rechunk(&args, true);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        stderr(&out)
    }

    /// Every object under `s3://data/{name}/` with its ETag (the MD5 of its bytes).
    fn objects(&self, name: &str) -> BTreeMap<String, String> {
        let listing = self
            .s3
            .get(&format!("/data?list-type=2&prefix={name}/&max-keys=1000"));
        assert!(!listing.contains("<IsTruncated>true"), "{listing}");
        listing
            .split("<Contents>")
            .skip(1)
            .map(|c| {
                let field = |tag: &str| {
                    c.split(&format!("<{tag}>"))
                        .nth(1)
                        .and_then(|r| r.split(&format!("</{tag}>")).next())
                        .unwrap_or_default()
                        .to_string()
                };
                let key = field("Key");
                (key[name.len()..].to_string(), field("ETag"))
            })
            .collect()
    }

    /// Bytes of every object under `s3://data/{prefix}`.
    fn bytes_under(&self, prefix: &str) -> u64 {
        let listing = self
            .s3
            .get(&format!("/data?list-type=2&prefix={prefix}&max-keys=1000"));
        assert!(!listing.contains("<IsTruncated>true"), "{listing}");
        listing
            .split("<Size>")
            .skip(1)
            .filter_map(|r| r.split("</Size>").next()?.parse::<u64>().ok())
            .sum()
    }

    /// A clean run: its objects, and how many requests it took.
    fn clean(&self) -> (BTreeMap<String, String>, u64) {
        self.proxy.reset_stats();
        self.run("clean");
        let requests = self.proxy.stats().requests;
        let objects = self.objects("clean");
        assert!(objects.len() > 36, "{objects:?}");
        (objects, requests)
    }

    /// The faulted run's target is the clean one, object for object, and its values are the
    /// source's; the scratch is gone.
    fn check(&self, name: &str, clean: &BTreeMap<String, String>) {
        assert_eq!(&self.objects(name), clean, "{name}");
        let out = self.rechunk(&["verify", &self.raw, &format!("s3://data/{name}")], false);
        assert!(out.status.success(), "{}", stderr(&out));
        let listing = self.s3.get(&format!("/work?list-type=2&prefix={name}"));
        assert!(!listing.contains("<Key>"), "scratch left behind: {listing}");
    }
}

/// A window of `fault` lasting 20 s that opens halfway through the run.
fn outage(fault: Fault) {
    let cloud = Cloud::start();
    let (clean, requests) = cloud.clean();
    cloud.proxy.reset_stats();
    cloud
        .proxy
        .fail_window(fault, requests / 2, Duration::from_secs(20));
    let start = Instant::now();
    let log = cloud.run("faulted");
    let opened = cloud
        .proxy
        .window_opened()
        .expect("the window never opened");
    assert!(
        start.elapsed() >= Duration::from_secs(20) && opened > start,
        "the run did not wait through the window"
    );
    assert!(cloud.proxy.stats().faults > 0);
    assert!(
        log.contains("retrying with backoff"),
        "no word of the retries: {log}"
    );
    cloud.check("faulted", &clean);
}

#[test]
fn a_20s_stall_mid_run_ends_identical() {
    outage(Fault::Stall);
}

#[test]
fn a_20s_window_of_slowdown_mid_run_ends_identical() {
    outage(Fault::SlowDown);
}

#[test]
fn connections_reset_at_1_percent_end_identical() {
    let cloud = Cloud::start();
    let (clean, _) = cloud.clean();
    cloud.proxy.reset_stats();
    cloud.proxy.fail_at_rate(Fault::Reset, 0.01);
    cloud.run("faulted");
    assert!(cloud.proxy.stats().faults > 0, "{:?}", cloud.proxy.stats());
    cloud.check("faulted", &clean);
}

#[test]
fn a_store_that_stops_answering_fails_inspect_within_the_retry_budget() {
    let cloud = Cloud::start();
    cloud.proxy.fail_at_rate(Fault::Stall, 1.0);
    let start = Instant::now();
    let out = cloud.rechunk(
        &["inspect", "s3://data/in/tas.zarr", "--retry-timeout", "5s"],
        true,
    );
    let took = start.elapsed();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("s3://data/in/tas.zarr"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}: {err}");
}

#[test]
fn a_store_that_keeps_throttling_fails_the_run_with_one_clear_error() {
    let cloud = Cloud::start();
    cloud.proxy.fail_at_rate(Fault::SlowDown, 1.0);
    let start = Instant::now();
    let out = cloud.rechunk(
        &[
            "s3://data/in/tas.zarr",
            "s3://data/refused",
            "--scratch",
            "s3://work/refused",
            "--chunks",
            "time=-1,lat=10,lon=10",
            "--retry-timeout",
            "3s",
            "-q",
        ],
        true,
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        !err.contains("panicked") && err.contains("s3://data/"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("retrying with backoff"), "{err}");
    // Within the budget and a few seconds: no probe of another format waits on the store.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(30), "took {took:?}: {err}");
}

#[test]
fn an_endpoint_variable_that_is_not_a_url_is_one_clear_error() {
    // No server is needed: the variable is checked before any request.
    for value in ["", "localhost:9000", "http://"] {
        let out = rechunk_env(
            &["inspect", "s3://data/in/tas.zarr"],
            &[
                ("AWS_ENDPOINT_URL", value),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
            ],
        );
        let err = stderr(&out);
        assert!(!out.status.success(), "{value:?}: {err}");
        assert!(!err.contains("panicked"), "{value:?}: {err}");
        assert!(
            err.contains("AWS_ENDPOINT_URL") && err.contains("is not the URL of an S3 server"),
            "{value:?}: {err}"
        );
    }
}

/// `rechunk plan` on a store 30 ms away: it times the store's requests (reads of a missing
/// key, so it writes nothing), records the waits in the plan, and a small array that fits in
/// memory is planned in one stage from memory, not through scratch on the slow store; at
/// 100 ms it keeps more requests in flight.
#[test]
fn plan_times_the_store_and_keeps_a_small_array_off_remote_scratch() {
    let cloud = Cloud::start();
    cloud.proxy.set_latency(Duration::from_millis(30));
    let listings = || {
        (
            cloud.s3.get("/data?list-type=2"),
            cloud.s3.get("/work?list-type=2"),
        )
    };
    let before = listings();
    let plan = || {
        let out = cloud.rechunk(
            &[
                "plan",
                "s3://data/in/tas.zarr",
                "s3://data/planned.zarr",
                "--scratch",
                "s3://work/planned",
                "--chunks",
                "time=-1,lat=10,lon=10",
                "--max-mem",
                "200MiB",
                "--json",
            ],
            true,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let plan_30ms = plan();
    let array = &plan_30ms["arrays"][0];
    let cost = &array["estimate"]["rates"]["cost"];
    for wait in ["source_wait", "scratch_wait", "target_wait"] {
        let seconds = cost[wait].as_f64().unwrap_or_default();
        assert!(
            (0.025..1.0).contains(&seconds),
            "{wait} = {seconds} s, expected about the proxy's 30 ms: {cost}"
        );
    }
    assert!(
        cost["io_window"].as_u64().unwrap_or_default() >= 1,
        "{cost}"
    );
    assert_eq!(
        array["plan"]["stages"].as_array().map(Vec::len),
        Some(1),
        "a 5.5 MiB array under --max-mem 200MiB runs from memory: {}",
        array["estimate"]
    );
    // Requests in flight grow with latency (Little's law), unless --io-concurrency says.
    let window = |plan: &serde_json::Value| {
        plan["arrays"][0]["estimate"]["rates"]["cost"]["io_window"]
            .as_u64()
            .unwrap_or_default()
    };
    cloud.proxy.set_latency(Duration::from_millis(100));
    let plan_100ms = plan();
    // Opening the source and timing the store are round trips a run makes again: the plan
    // counts them (at least the metadata read and the probe's three rounds, 100 ms each).
    let opening = plan_100ms["opening_seconds"].as_f64().unwrap_or_default();
    assert!(
        (0.3..30.0).contains(&opening),
        "opening took {opening} s at 100 ms per request"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default_window = rechunker_store::DEFAULT_IO_CONCURRENCY.div_ceil(cores) as u64;
    assert!(
        window(&plan_100ms) > default_window,
        "windows at 30 and 100 ms: {} and {}, default {default_window}",
        window(&plan_30ms),
        window(&plan_100ms)
    );
    assert_eq!(before, listings(), "planning wrote to the store");
}

/// Planning reads a few source chunks to time them, and keeps them: the run reads those from
/// memory, so planning and running together download each source object once. The chunks
/// (156 KiB each, of random values) dwarf what else a run reads (metadata, journal, answers
/// to the probes of missing keys), so a single chunk fetched twice shows.
#[test]
fn a_run_downloads_each_source_chunk_once_although_planning_read_some() {
    let cloud = Cloud::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = write_tas(
        &dir.path().join("wide.raw"),
        &[40, 200, 200],
        &[1, 200, 200],
    );
    cloud.upload(&raw, "s3://data/in/wide.zarr");
    let source = cloud.bytes_under("in/wide.zarr/");
    let chunk = source / 40;
    cloud.proxy.reset_stats();
    let out = cloud.rechunk(
        &[
            "s3://data/in/wide.zarr",
            "s3://data/wide-once.zarr",
            "--scratch",
            "s3://work/wide-once",
            "--chunks",
            "time=-1,lat=50,lon=50",
            "--max-mem",
            "128MiB",
            "-q",
        ],
        true,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let down = cloud.proxy.stats().bytes_down;
    assert!(
        down >= source - 1024 && down < source + chunk,
        "{down} bytes downloaded by plan and run, for a source of {source} bytes in chunks of about {chunk}: {}", stderr(&out)
    );
    let out = cloud.rechunk(&["verify", &raw, "s3://data/wide-once.zarr"], false);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// While a task writes, the runner that will run the next one already fetches its first
/// source chunks; whichever thread reads them takes them, so every chunk still crosses the
/// network once. The run goes to a local target in several tasks (the common "download and
/// rechunk" case).
#[test]
fn the_next_tasks_first_chunks_are_fetched_while_a_task_writes_and_only_once() {
    let cloud = Cloud::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = write_tas(
        &dir.path().join("long.raw"),
        &[64, 400, 400],
        &[1, 400, 400],
    );
    cloud.upload(&raw, "s3://data/in/long.zarr");
    let source = cloud.bytes_under("in/long.zarr/");
    let chunk = source / 64;
    cloud.proxy.reset_stats();
    let target = dir.path().join("long.zarr");
    let out = cloud.rechunk_logging(
        &[
            "s3://data/in/long.zarr",
            target.to_str().unwrap(),
            "--chunks",
            "time=-1,lat=50,lon=50",
            "--max-mem",
            PREFETCH_RUN_MEM,
            "-j",
            "2",
        ],
        true,
        "rechunker_zarr=debug,rechunker_store=warn",
    );
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let prefetches: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("prefetching the next task's first chunks"))
        .collect();
    assert!(
        prefetches.len() >= 2 && prefetches.iter().all(|l| !l.contains("started=0")),
        "every task but the last two should prefetch: {log}"
    );
    let down = cloud.proxy.stats().bytes_down;
    assert!(
        down >= source - 1024 && down < source + chunk,
        "{down} bytes downloaded for a source of {source} bytes in chunks of about {chunk}: {log}"
    );
    let out = cloud.rechunk(&["verify", &raw, target.to_str().unwrap()], false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("identical"), "{}", stdout(&out));
}

/// Small enough that the 41 MB source above is read in several tasks (8 here).
const PREFETCH_RUN_MEM: &str = "110MiB";

/// A shard of 35 MiB goes to S3 as a multipart upload (its ETag counts the parts), and reads
/// back identical.
#[test]
fn a_large_shard_is_uploaded_in_parts_and_reads_back_identical() {
    let cloud = Cloud::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = write_tas(&dir.path().join("big.raw"), &[40, 480, 480], &[1, 480, 480]);
    let out = cloud.rechunk(
        &[
            &raw,
            "s3://data/sharded.zarr",
            "--chunks",
            "time=40,lat=48,lon=48",
            "--shards",
            "time=40,lat=480,lon=480",
            "-q",
        ],
        true,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = cloud.objects("sharded.zarr");
    let etag = objects
        .get("/tas/c/0/0/0")
        .unwrap_or_else(|| panic!("no shard: {objects:?}"));
    assert!(
        etag.replace("&quot;", "").trim_matches('"').ends_with("-3"),
        "the 35 MiB shard should be a 3-part upload, ETag {etag}"
    );
    let out = cloud.rechunk(&["verify", &raw, "s3://data/sharded.zarr"], false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("identical"), "{}", stdout(&out));
}
