//! A real one-node SLURM on localhost for the distributed tests (`tests/slurm.rs`).
//!
//! [`ensure_running`] installs Debian's `slurmctld slurmd slurm-client munge` if they are
//! missing, creates a munge key, writes a minimal `/etc/slurm/slurm.conf` (one node `localhost`
//! with this machine's CPUs and half its memory, no accounting, no cgroups) and starts `munged`,
//! `slurmctld` and `slurmd` directly as daemons (these machines have no systemd), then waits
//! until `sinfo` shows the node idle. Every step is skipped when its work is already done, so
//! it is cheap to call before every test run; a SLURM that some other configuration set up is
//! used as it is, never reconfigured.

use crate::util::{apt_install, step};
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PACKAGES: &[&str] = &["slurmctld", "slurmd", "slurm-client", "munge"];
const CONF: &str = "/etc/slurm/slurm.conf";
/// The first line of the configuration this module writes: only such a file is ever rewritten.
const MARKER: &str = "# Written by `cargo xtask setup` (rechunker)";
const MUNGE_KEY: &str = "/etc/munge/munge.key";
const MUNGE_RUN: &str = "/run/munge";
const MUNGED_PID: &str = "/run/munge/munged.pid";
const SLURMCTLD_PID: &str = "/run/slurmctld.pid";
const SLURMD_PID: &str = "/run/slurmd.pid";
const SLURMCTLD_LOG: &str = "/var/log/slurm/slurmctld.log";
const SLURMD_LOG: &str = "/var/log/slurm/slurmd.log";
const MUNGED_LOG: &str = "/var/log/munge/munged.log";
/// The node's name, as `slurmd -N` is told and the tests expect.
const NODE: &str = "localhost";
/// How long the daemons get to come up and the node to turn idle.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Makes sure a SLURM with an idle node is answering on this machine, installing, configuring
/// and starting it as needed.
pub fn ensure_running() -> Result<()> {
    ensure().context(
        "cannot start a local SLURM for the tests (tests/slurm.rs); `cargo xtask setup` starts one as root on Debian",
    )
}

fn ensure() -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!("a local SLURM is set up only on Linux (Debian's slurm packages)");
    }
    let existing = std::fs::read_to_string(CONF).ok();
    if let Some(text) = &existing {
        if !text.starts_with(MARKER) {
            // Someone else's SLURM: use it if it works, never rewrite its configuration.
            if node_usable() {
                step(&format!(
                    "SLURM is running with {CONF} (not written by xtask); the tests use it"
                ));
                return Ok(());
            }
            bail!(
                "{CONF} was not written by cargo xtask and that SLURM is not answering with a usable node; start it, or move the file away so that setup writes a one-node configuration"
            );
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if node_usable() {
            step("SLURM is running; the tests use it");
            return Ok(());
        }
        bail!("installing and starting SLURM needs root (apt-get, daemons under /run); run `cargo xtask setup` as root");
    }
    apt_install(PACKAGES)?;
    ensure_munge()?;

    let conf = config()?;
    let changed = existing.as_deref() != Some(conf.as_str());
    if changed {
        step(&format!("writing {CONF} (one node `{NODE}`)"));
        if let Some(dir) = Path::new(CONF).parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(CONF, &conf).with_context(|| format!("cannot write {CONF}"))?;
        // Daemons running with an older configuration of ours are restarted with this one.
        for (name, pid_file) in [("slurmd", SLURMD_PID), ("slurmctld", SLURMCTLD_PID)] {
            if let Some(pid) = daemon_pid(pid_file, name) {
                step(&format!(
                    "stopping {name} (pid {pid}) to apply the new configuration"
                ));
                stop(pid, name)?;
            }
        }
    }
    for dir in [
        "/var/spool/slurmctld",
        "/var/spool/slurmd",
        "/var/log/slurm",
    ] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    }

    let deadline = Instant::now() + START_TIMEOUT;
    if controller_up() {
        step("slurmctld is running");
    } else {
        if let Some(pid) = daemon_pid(SLURMCTLD_PID, "slurmctld") {
            // Alive but not answering: give it its start-up time before starting another.
            wait_for(deadline, "slurmctld to answer", controller_up).or_else(|_| {
                stop(pid, "slurmctld")?;
                start_slurmctld(deadline)
            })?;
        } else {
            start_slurmctld(deadline)?;
        }
    }
    if daemon_pid(SLURMD_PID, "slurmd").is_some() {
        step("slurmd is running");
    } else {
        step(&format!("starting slurmd -N {NODE}"));
        daemon(
            Command::new("/usr/sbin/slurmd").args(["-N", NODE]),
            SLURMD_LOG,
        )?;
    }
    wait_for_node(deadline)
}

/// The configuration: one node with this machine's CPUs (at least 2, so that two jobs share it)
/// and half its memory, scheduled by cores and memory, without accounting or cgroups.
fn config() -> Result<String> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("cannot read /proc/meminfo")?;
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    let real_memory_mib = (total_kib / 1024 / 2).max(512);
    Ok(format!(
        "{MARKER}: a one-node SLURM on localhost for the tests.
# Daemons started directly (no systemd): munged, slurmctld -c, slurmd -N {NODE}.
ClusterName=rechunker
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile={SLURMCTLD_PID}
SlurmdPidFile={SLURMD_PID}
SlurmctldLogFile={SLURMCTLD_LOG}
SlurmdLogFile={SLURMD_LOG}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that give no --mem get this much per CPU instead of the whole node.
DefMemPerCPU=256
# A job whose afterok dependency failed is cancelled, not left pending forever.
DependencyParameters=kill_invalid_depend
# Finished jobs stay visible to `scontrol show job` for an hour (there is no accounting).
MinJobAge=3600
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mib} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
",
        cpus = cpus.max(2),
    ))
}

/// A munge key (created if missing) and a `munged` answering on its socket.
fn ensure_munge() -> Result<()> {
    let (uid, gid) = user_ids("munge")?;
    if !Path::new(MUNGE_KEY).exists() {
        step(&format!("creating the munge key {MUNGE_KEY}"));
        let dir = Path::new(MUNGE_KEY).parent().unwrap_or(Path::new("/"));
        owned_dir(dir, uid, gid, 0o700)?;
        let mut key = vec![0u8; 1024];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .context("cannot read /dev/urandom")?;
        std::fs::write(MUNGE_KEY, &key).with_context(|| format!("cannot write {MUNGE_KEY}"))?;
        std::fs::set_permissions(MUNGE_KEY, std::fs::Permissions::from_mode(0o400))?;
        std::os::unix::fs::chown(MUNGE_KEY, Some(uid), Some(gid))?;
    }
    if daemon_pid(MUNGED_PID, "munged").is_some() && munge_works() {
        step("munged is running");
        return Ok(());
    }
    step("starting munged");
    owned_dir(Path::new(MUNGE_RUN), uid, gid, 0o755)?;
    owned_dir(Path::new("/var/lib/munge"), uid, gid, 0o711)?;
    owned_dir(Path::new("/var/log/munge"), uid, gid, 0o700)?;
    // `--force` lets munged take over the socket a killed munged left behind.
    daemon(
        Command::new("/usr/sbin/munged")
            .arg("--force")
            .uid(uid)
            .gid(gid),
        MUNGED_LOG,
    )?;
    wait_for(
        Instant::now() + Duration::from_secs(20),
        "munged to answer",
        munge_works,
    )
    .with_context(|| log_tail(MUNGED_LOG))
}

fn munge_works() -> bool {
    quiet(Command::new("munge").args(["-n", "-s", "rechunker"]))
}

fn start_slurmctld(deadline: Instant) -> Result<()> {
    // `-c`: a fresh controller without the jobs of an earlier run (their files are gone).
    step("starting slurmctld -c");
    daemon(Command::new("/usr/sbin/slurmctld").arg("-c"), SLURMCTLD_LOG)?;
    wait_for(deadline, "slurmctld to answer", controller_up)
        .with_context(|| log_tail(SLURMCTLD_LOG))
}

fn controller_up() -> bool {
    Command::new("scontrol")
        .arg("ping")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("is UP"))
}

/// The node's state as `sinfo` prints it (`idle`, `down*`, ...); None if it cannot say.
fn node_state() -> Option<String> {
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-n", NODE, "-o", "%T"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !state.is_empty()).then_some(state)
}

/// True for states in which the node takes jobs.
fn usable(state: &str) -> bool {
    matches!(
        state,
        "idle" | "mixed" | "allocated" | "completing" | "planned"
    )
}

fn node_usable() -> bool {
    controller_up() && node_state().is_some_and(|s| usable(&s))
}

/// Waits until the node is usable, resuming it if SLURM has set it down or drained (a node that
/// was gone for a while comes back DOWN).
fn wait_for_node(deadline: Instant) -> Result<()> {
    let mut last = String::new();
    let mut resumed: Option<Instant> = None;
    loop {
        if let Some(state) = node_state() {
            if usable(&state) {
                step(&format!("SLURM is up: node {NODE} is {state}"));
                return Ok(());
            }
            let responding = !state.ends_with('*');
            let stuck = ["down", "drain", "fail", "inval"]
                .iter()
                .any(|s| state.starts_with(s));
            if responding && stuck && resumed.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                step(&format!(
                    "node {NODE} is {state}: scontrol update nodename={NODE} state=resume"
                ));
                let _ = quiet(Command::new("scontrol").args([
                    "update",
                    &format!("nodename={NODE}"),
                    "state=resume",
                ]));
                resumed = Some(Instant::now());
            }
            last = state;
        }
        if Instant::now() > deadline {
            let reason = Command::new("sinfo")
                .args(["-R", "-h"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            bail!(
                "node {NODE} is not idle after {}s (state `{last}`, reason `{reason}`); {}",
                START_TIMEOUT.as_secs(),
                log_tail(SLURMD_LOG)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Starts a daemon that forks itself into the background: in a process group of its own, with
/// no terminal or pipe of ours kept open (a CI log would otherwise wait for it).
fn daemon(cmd: &mut Command, log: &str) -> Result<()> {
    let status = cmd
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status}); {}", log_tail(log));
    }
    Ok(())
}

/// The pid in `pid_file` if that process is alive and is `name`.
fn daemon_pid(pid_file: &str, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == name).then_some(pid)
}

/// Stops the daemon `pid` (one this module started, found through its pid file).
fn stop(pid: i32, name: &str) -> Result<()> {
    // SAFETY: kill has no memory-safety preconditions; pid is a live `name` process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let gone = || !Path::new(&format!("/proc/{pid}")).exists() || zombie(pid);
    if wait_for(Instant::now() + Duration::from_secs(15), name, gone).is_err() {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_for(Instant::now() + Duration::from_secs(5), name, gone)
            .with_context(|| format!("{name} (pid {pid}) does not stop"))?;
    }
    Ok(())
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

fn wait_for(deadline: Instant, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs `cmd` with no output; true if it succeeded.
fn quiet(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == user)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| format!("no user `{user}` in /etc/passwd (the munge package creates it)"))
}

/// Creates `dir` if needed and gives it to `uid`/`gid` with `mode`.
fn owned_dir(dir: &Path, uid: u32, gid: u32, mode: u32) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .with_context(|| format!("cannot chown {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", dir.display()))
}

/// The last lines of a daemon's log, for an error message.
fn log_tail(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n  ");
            format!("the end of {path}:\n  {tail}")
        }
        Err(_) => format!("{path} is empty or missing"),
    }
}
