//! What rechunk may delete or overwrite, and the checks that prove it before it acts.
//!
//! rechunk deletes only what it can prove it created: its own scratch folder (marked by
//! `rechunk-scratch.json`, see [`rechunker_core::job::claim_scratch`]), and at DST only a dataset
//! of the target format or the unfinished target of its own interrupted run. Before anything is
//! written, SRC, DST and the scratch folder are resolved (links followed, `..` applied, the parent
//! of a path that does not exist yet resolved too) and must lie apart: none equal to, inside, or
//! containing another. One run at a time writes a DST: a lock file beside it names the run.

use crate::formats::{self, TargetFormat};
use anyhow::{bail, Context, Result};
use rechunker_core::job::{self, DatasetPlan};
use rechunker_core::scratch::ScratchStore;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// A location resolved for comparison: a local path with every existing link resolved, or an
/// object-store prefix as its scheme and bucket plus key components.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Local(PathBuf),
    Remote { root: String, parts: Vec<String> },
}

/// How a place lies relative to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    Same,
    Inside,
    Contains,
}

impl Place {
    /// Resolves `location` (a path, `file://` URI or object-store URI).
    pub fn of(location: &str) -> Result<Place> {
        if formats::is_object_store(location) {
            let (scheme, rest) = location.split_once("://").unwrap_or(("", location));
            let mut parts = rest.split('/').filter(|p| !p.is_empty());
            let bucket = parts.next().unwrap_or_default();
            return Ok(Place::Remote {
                root: format!("{scheme}://{bucket}"),
                parts: parts.map(str::to_string).collect(),
            });
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        Ok(Place::Local(resolve_local(Path::new(path))?))
    }

    /// How `self` lies relative to `other`, if they overlap at all.
    pub fn overlap(&self, other: &Place) -> Option<Overlap> {
        let (a, b): (Vec<String>, Vec<String>) = match (self, other) {
            (Place::Local(a), Place::Local(b)) => (components(a), components(b)),
            (Place::Remote { root: ra, parts: a }, Place::Remote { root: rb, parts: b })
                if ra == rb =>
            {
                (a.clone(), b.clone())
            }
            _ => return None,
        };
        if a == b {
            Some(Overlap::Same)
        } else if a.starts_with(&b) {
            Some(Overlap::Inside)
        } else if b.starts_with(&a) {
            Some(Overlap::Contains)
        } else {
            None
        }
    }
}

fn components(p: &Path) -> Vec<String> {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// `path` made absolute, walking it component by component: while the path so far exists,
/// links and `..` are resolved by the file system; past the first part that does not exist yet,
/// `..` and `.` apply lexically (nothing there can be a link).
pub fn resolve_local(path: &Path) -> Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let mut resolved = PathBuf::new();
    let mut exists = true;
    for part in absolute.components() {
        let next = resolved.join(part.as_os_str());
        if exists && std::fs::symlink_metadata(&next).is_ok() {
            resolved = std::fs::canonicalize(&next).unwrap_or(next);
            continue;
        }
        exists = false;
        match part {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => resolved.push(other.as_os_str()),
        }
    }
    Ok(resolved)
}

/// The local files a SRC argument names: the files of a pattern, or itself.
fn source_places(src: &str) -> Result<Vec<(String, Place)>> {
    if src.contains(['*', '?', '[']) && !src.contains("://") {
        let mut out = Vec::new();
        for file in glob::glob(src)
            .with_context(|| format!("`{src}` is not a valid file pattern"))?
            .flatten()
        {
            let text = file.display().to_string();
            out.push((text.clone(), Place::of(&text)?));
        }
        return Ok(out);
    }
    Ok(vec![(src.to_string(), Place::of(src)?)])
}

/// Refuses unless `a` and `b` lie apart; `fix` says what to change.
fn check_apart(
    a_what: &str,
    a: &str,
    a_place: &Place,
    b_what: &str,
    b: &str,
    fix: &str,
) -> Result<()> {
    let (inner, relation, outer) = match a_place.overlap(&Place::of(b)?) {
        None => return Ok(()),
        Some(Overlap::Same) => ((a_what, a), "is the same place as", (b_what, b)),
        Some(Overlap::Inside) => ((a_what, a), "lies inside", (b_what, b)),
        Some(Overlap::Contains) => ((b_what, b), "lies inside", (a_what, a)),
    };
    bail!(
        "{} {} {relation} {} {}: rechunk could overwrite or delete one through the other; {fix}",
        inner.0,
        inner.1,
        outer.0,
        outer.1
    )
}

/// Refuses a run whose source, target and scratch folder are not apart from one another.
pub fn check_locations(src: &str, dst: &str, scratch: Option<&str>) -> Result<()> {
    const NEW_TARGET: &str = "write the target somewhere that neither holds nor lies in the source";
    const NEW_SCRATCH: &str = "give --scratch a place apart from the source and the target";
    for (file, place) in source_places(src)? {
        check_apart("the source", &file, &place, "the target", dst, NEW_TARGET)?;
        if let Some(scratch) = scratch {
            check_apart(
                "the source",
                &file,
                &place,
                "the scratch folder",
                scratch,
                NEW_SCRATCH,
            )?;
        }
    }
    if let Some(scratch) = scratch {
        let place = Place::of(scratch)?;
        check_apart(
            "the scratch folder",
            scratch,
            &place,
            "the target",
            dst,
            NEW_SCRATCH,
        )?;
    }
    Ok(())
}

/// The scratch folder of a run into `dst`: `DST.rechunk-scratch` beside the target, or, when
/// the user names a place with `--scratch DIR`, a folder of that name inside it. rechunk always
/// works in a folder it names itself, so the place the user gave is never deleted.
pub fn scratch_folder(scratch_arg: Option<&str>, dst: &str) -> String {
    let Some(dir) = scratch_arg else {
        // A bucket as DST has no "beside": `s3://b.rechunk-scratch` would be another bucket.
        // Naming a folder inside it makes the overlap check ask for --scratch instead.
        if let Ok(Place::Remote { parts, .. }) = Place::of(dst) {
            if parts.is_empty() {
                return format!("{}/rechunk-scratch", dst.trim_end_matches('/'));
            }
        }
        return formats::default_scratch(dst);
    };
    let trimmed = dst.trim_end_matches('/');
    let base = trimmed
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty() && !b.contains("://") && *b != "." && *b != "..")
        .unwrap_or("target");
    // Resolve `..` and `.` in the target's last component by taking the resolved name.
    let base = match Place::of(trimmed) {
        Ok(Place::Local(p)) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| base.to_string()),
        _ => base.to_string(),
    };
    let resolved = match Place::of(trimmed) {
        Ok(Place::Local(p)) => p.display().to_string(),
        _ => trimmed.to_string(),
    };
    format!(
        "{}/{base}-{}.rechunk-scratch",
        dir.trim_end_matches('/'),
        place_tag(&resolved)
    )
}

/// Why `--overwrite` may replace what is at `dst`: it is a dataset of the target format, or the
/// unfinished target of an interrupted run whose plan is in `scratch`. Anything else is
/// refused with what is there, so a folder of the user's is never taken for a target.
pub fn check_replaceable(
    dst: &str,
    format: TargetFormat,
    scratch: &dyn ScratchStore,
) -> Result<()> {
    if !formats::target_exists(dst)? {
        return Ok(());
    }
    // Ours: the scratch rechunk claimed for this very target (marker and plan both name it),
    // in a folder of this user's; a plan planted or left by someone else proves nothing.
    let marked = job::scratch_owner(scratch).ok().flatten().as_deref() == Some(dst);
    let planned = match scratch.get(job::PLAN_KEY) {
        Ok(Some(bytes)) => DatasetPlan::from_json(&String::from_utf8_lossy(&bytes))
            .is_ok_and(|plan| plan.target == dst),
        _ => false,
    };
    let ours = marked && planned && owned_by_this_user(&scratch.location());
    if !formats::is_object_store(dst) {
        let path = Path::new(dst.strip_prefix("file://").unwrap_or(dst));
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("cannot inspect the target {dst}"))?;
        if meta.file_type().is_symlink() {
            bail!(
                "the target {dst} is a symbolic link; --overwrite never deletes through a link: give the path it points to ({}) if that is what you mean to replace",
                std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| "a missing path".into())
            );
        }
    }
    if ours || formats::is_dataset_of(dst, format)? {
        return Ok(());
    }
    bail!(
        "the target {dst} exists and is not a {} dataset{}; --overwrite replaces only datasets of the target format (or rechunk's own unfinished target): choose another DST, or move it away yourself",
        format.name(),
        sample_entries(dst)
            .map(|e| format!(" (it holds {e})"))
            .unwrap_or_default()
    )
}

/// True unless `location` is a local folder that belongs to another user.
fn owned_by_this_user(location: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    if formats::is_object_store(location) {
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(location.strip_prefix("file://").unwrap_or(location))
        .is_ok_and(|m| m.uid() == uid)
}

/// `location` without trailing `/` and `/.` (a local path keeps a lone `/`), so that
/// `link.zarr/` names the link, not the folder it points to, and every check and deletion sees
/// the same place.
pub fn normalize_location(location: &str) -> String {
    let mut out = location.to_string();
    loop {
        let before = out.len();
        while out.len() > 1 && out.ends_with('/') && !out.ends_with("://") {
            out.pop();
        }
        if out.ends_with("/.") && out.len() > 2 {
            out.truncate(out.len() - 2);
        }
        if out == "." || out.is_empty() {
            return location.to_string();
        }
        if out.len() == before {
            return out;
        }
    }
}

/// A short, stable hash of a resolved place, so that scratch folders of two targets with the
/// same name in one `--scratch` place never meet (FNV-1a, 32 bits as hex).
fn place_tag(place: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in place.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// A few names inside a local folder, for messages.
fn sample_entries(dst: &str) -> Option<String> {
    let entries = std::fs::read_dir(dst).ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    let more = names.len().saturating_sub(4);
    names.truncate(4);
    Some(format!(
        "{}{}",
        names.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// One run at a time into a target: `DST.rechunk-lock`, created exclusively beside a local
/// target and removed when the run ends. A lock whose process is gone (same host, no such
/// rechunk process) is stale and taken over.
#[derive(Debug)]
pub struct TargetLock {
    path: PathBuf,
    token: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LockRecord {
    pid: u32,
    host: String,
    started_unix: u64,
    token: String,
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates within it
    // or truncates, and we read only up to the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// True while process `pid` of this host runs and is a rechunk (so a reused PID does not hold
/// a stale lock forever).
fn rechunk_alive(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("rechunk"),
        Err(_) => false,
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TargetLock {
    /// The lock file of `dst`, or `None` for targets on object stores (see docs/design.md:
    /// their runs are not locked yet).
    fn path_of(dst: &str) -> Option<PathBuf> {
        if formats::is_object_store(dst) {
            return None;
        }
        let trimmed = dst
            .strip_prefix("file://")
            .unwrap_or(dst)
            .trim_end_matches('/');
        let resolved = resolve_local(Path::new(trimmed)).ok()?;
        let mut name = resolved.file_name()?.to_owned();
        name.push(".rechunk-lock");
        Some(resolved.with_file_name(name))
    }

    /// Takes the lock of `dst` or fails naming the run that holds it.
    pub fn acquire(dst: &str) -> Result<Option<TargetLock>> {
        let Some(path) = Self::path_of(dst) else {
            tracing::debug!(dst, "targets on object stores are not locked");
            return Ok(None);
        };
        let host = host_name();
        let record = LockRecord {
            pid: std::process::id(),
            host: host.clone(),
            started_unix: now_unix(),
            token: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
        };
        let text = serde_json::to_string(&record).context("cannot describe the lock")?;
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("cannot write the lock {}", path.display()))?;
                    return Ok(Some(TargetLock {
                        path,
                        token: record.token,
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot create the lock {} beside the target",
                            path.display()
                        )
                    })
                }
            }
            let held = std::fs::read(&path).unwrap_or_default();
            match serde_json::from_slice::<LockRecord>(&held) {
                Ok(other) if other.host == host && !rechunk_alive(other.pid) => {
                    tracing::warn!(lock = %path.display(), pid = other.pid, "taking over the lock of a rechunk that is gone");
                    remove_if_unchanged(&path, &held);
                }
                Ok(other) => bail!(
                    "{dst} is being written by another rechunk (pid {} on {}, started {} s ago); wait for it to finish. If that run is gone, delete {}",
                    other.pid,
                    other.host,
                    now_unix().saturating_sub(other.started_unix),
                    path.display()
                ),
                // Empty or cut short: its writer died between creating and writing it, or is
                // writing it right now; only an old one is stale.
                Err(_) if lock_age_seconds(&path) > 10 => remove_if_unchanged(&path, &held),
                Err(_) => bail!(
                    "{dst} is being locked by another rechunk right now ({}); try again in a moment",
                    path.display()
                ),
            }
        }
        bail!(
            "cannot take the lock {} for {dst}: other runs keep taking it",
            path.display()
        )
    }
}

fn lock_age_seconds(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or(0, |d| d.as_secs())
}

/// Removes a stale lock only if it still holds what was read, so two processes taking over
/// the same stale lock cannot remove each other's fresh one.
fn remove_if_unchanged(path: &Path, held: &[u8]) {
    if std::fs::read(path).is_ok_and(|now| now == held) {
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        let ours = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<LockRecord>(&b).ok())
            .is_some_and(|r| r.token == self.token);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_overlap_by_components() {
        let p = |s: &str| Place::of(s).unwrap();
        assert_eq!(p("s3://b/x").overlap(&p("s3://b/x/")), Some(Overlap::Same));
        assert_eq!(
            p("s3://b/x/y").overlap(&p("s3://b/x")),
            Some(Overlap::Inside)
        );
        assert_eq!(
            p("s3://b/").overlap(&p("s3://b/x")),
            Some(Overlap::Contains)
        );
        assert_eq!(p("s3://b/x.zarr").overlap(&p("s3://b/x")), None);
        assert_eq!(p("s3://b/x").overlap(&p("s3://c/x")), None);
        assert_eq!(
            p("/tmp/a/b").overlap(&p("/tmp/a/./c/../b")),
            Some(Overlap::Same)
        );
        assert_eq!(p("/tmp/ab").overlap(&p("/tmp/a")), None);
    }

    #[test]
    fn scratch_folders_are_named_by_rechunk() {
        assert_eq!(
            scratch_folder(None, "out.zarr/"),
            "out.zarr.rechunk-scratch"
        );
        let remote = scratch_folder(Some("s3://work/"), "s3://lab/era5.zarr");
        assert!(
            remote.starts_with("s3://work/era5.zarr-") && remote.ends_with(".rechunk-scratch"),
            "{remote}"
        );
        // Targets of one name in different places get different folders; one place spelled
        // two ways gets one.
        assert_ne!(
            remote,
            scratch_folder(Some("s3://work/"), "s3://other/era5.zarr")
        );
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("out.nc").display().to_string();
        let winding = dir.path().join("sub/../out.nc").display().to_string();
        let a = scratch_folder(Some("/scratch"), &plain);
        assert!(a.starts_with("/scratch/out.nc-"), "{a}");
        assert_eq!(a, scratch_folder(Some("/scratch"), &winding));
    }

    #[test]
    fn a_bucket_target_never_gets_a_scratch_bucket_beside_it() {
        let folder = scratch_folder(None, "s3://lab/");
        assert_eq!(folder, "s3://lab/rechunk-scratch");
        let err = check_locations("/data/in.nc", "s3://lab/", Some(&folder)).unwrap_err();
        assert!(err.to_string().contains("--scratch"), "{err}");
    }

    #[test]
    fn trailing_separators_are_dropped() {
        assert_eq!(normalize_location("link.zarr/"), "link.zarr");
        assert_eq!(normalize_location("link.zarr/./"), "link.zarr");
        assert_eq!(normalize_location("/"), "/");
        assert_eq!(normalize_location("s3://b/x/"), "s3://b/x");
        assert_eq!(normalize_location("./"), "./");
    }
}
