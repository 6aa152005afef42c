//! `put_if_absent` is a create-if-absent that the store itself decides: of writers racing for
//! one key exactly one wins and the others are told the key exists, on the local scratch
//! directory, on object_store's in-memory store and on S3 (moto, from the workspace venv).

use object_store::memory::InMemory;
use rechunker_core::scratch::{LocalScratch, ScratchStore};
use rechunker_store::ObjectScratch;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const WRITERS: usize = 4;
const ROUNDS: usize = 25;

/// Races one writer per store (each its own instance, as separate processes would have) for
/// `ROUNDS` fresh keys, all released at once; fails unless each key has exactly one winner and
/// holds the winner's bytes.
fn race(stores: &[Arc<dyn ScratchStore>]) -> Result<(), String> {
    for round in 0..ROUNDS {
        let key = format!("race/{round}/rechunk-scratch.json");
        let start = Barrier::new(stores.len());
        let outcomes: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (key, start) = (&key, &start);
                    s.spawn(move || {
                        start.wait();
                        store
                            .put_if_absent(key, format!("writer {i}").as_bytes())
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i]).collect();
        if winners.len() != 1 {
            return Err(format!("{key}: {} writers won: {winners:?}", winners.len()));
        }
        let stored = stores[0].get(&key).map_err(|e| e.to_string())?;
        let want = format!("writer {}", winners[0]);
        if stored.as_deref() != Some(want.as_bytes()) {
            return Err(format!("{key} holds {stored:?}, not the winner's `{want}`"));
        }
        // A late writer loses too.
        if stores[0]
            .put_if_absent(&key, b"late")
            .map_err(|e| e.to_string())?
        {
            return Err(format!("{key}: a late writer won"));
        }
    }
    Ok(())
}

/// The read-then-write that `put_if_absent` must not be, with every writer's read forced to
/// happen before any write: `race` has to catch it, or it proves nothing.
struct ReadThenWrite {
    inner: Arc<dyn ScratchStore>,
    between: Arc<Barrier>,
}

impl ScratchStore for ReadThenWrite {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> rechunker_core::Result<()> {
        self.inner.put(key, data)
    }
    fn put_if_absent(&self, key: &str, data: &[u8]) -> rechunker_core::Result<bool> {
        let absent = self.inner.get(key)?.is_none();
        self.between.wait();
        if absent {
            self.inner.put(key, data)?;
        }
        Ok(absent)
    }
    fn get(&self, key: &str) -> rechunker_core::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> rechunker_core::Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn remove_prefix(&self, prefix: &str) -> rechunker_core::Result<()> {
        self.inner.remove_prefix(prefix)
    }
    fn delete(&self, key: &str) -> rechunker_core::Result<()> {
        self.inner.delete(key)
    }
}

#[test]
fn the_race_check_catches_a_read_then_write() {
    let memory = Arc::new(InMemory::new());
    let inner: Arc<dyn ScratchStore> = Arc::new(ObjectScratch::new("memory://", memory).unwrap());
    let between = Arc::new(Barrier::new(WRITERS));
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| {
            Arc::new(ReadThenWrite {
                inner: inner.clone(),
                between: between.clone(),
            }) as Arc<dyn ScratchStore>
        })
        .collect();
    let e = race(&stores).unwrap_err();
    assert!(e.contains(&format!("{WRITERS} writers won")), "{e}");
}

#[test]
fn one_writer_wins_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scratch");
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| Arc::new(LocalScratch::open(&root).unwrap()) as Arc<dyn ScratchStore>)
        .collect();
    race(&stores).unwrap();
}

#[test]
fn one_writer_wins_in_memory() {
    let memory = Arc::new(InMemory::new());
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| {
            Arc::new(ObjectScratch::new("memory://", memory.clone()).unwrap())
                as Arc<dyn ScratchStore>
        })
        .collect();
    race(&stores).unwrap();
    basics(stores[0].as_ref());
}

/// Puts, reads, lists and removes behave as the scratch contract says.
fn basics(s: &dyn ScratchStore) {
    s.put("a/b/c", b"xyz").unwrap();
    s.put("a/b/c", b"xyz2").unwrap();
    assert_eq!(s.get("a/b/c").unwrap().unwrap(), b"xyz2");
    assert!(s.get("a/nothing").unwrap().is_none());
    s.put_parts("a/parts", &[b"12", b"", b"345"]).unwrap();
    assert_eq!(s.get("a/parts").unwrap().unwrap(), b"12345");
    assert!(s.put_if_absent("a/j", b"1").unwrap());
    assert!(!s.put_if_absent("a/j", b"2").unwrap());
    assert_eq!(s.get("a/j").unwrap().unwrap(), b"1");
    s.put("ab/other", b"").unwrap();
    let mut keys = s.list("a/").unwrap();
    keys.sort();
    assert_eq!(keys, ["b/c", "j", "parts"]);
    s.delete("a/j").unwrap();
    s.delete("a/j").unwrap();
    assert!(s.get("a/j").unwrap().is_none());
    s.remove_prefix("a").unwrap();
    assert!(s.list("a/").unwrap().is_empty());
    assert_eq!(
        s.list("").unwrap().len(),
        1 + s.list("race/").unwrap().len()
    );
    assert!(!s.is_empty().unwrap());
    for bad in ["", "../x", "a//b", "a/./b"] {
        let e = s.get(bad).unwrap_err().to_string();
        assert!(e.contains("not a scratch key"), "{bad}: {e}");
    }
    s.remove_prefix("").unwrap();
    assert!(s.is_empty().unwrap());
}

#[test]
fn only_writable_object_stores_hold_scratch() {
    let e = ObjectScratch::open("https://example.invalid/x")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("writable"), "{e}");
    let e = ObjectScratch::open("/tmp/x").err().unwrap().to_string();
    assert!(e.contains("local path"), "{e}");
}

/// A moto server on a free port, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto (from the venv `cargo xtask setup` makes, or beside RECHUNKER_PYTHON) with a
/// bucket `bucket`; fails the test if it cannot.
fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moto = std::env::var_os("RECHUNKER_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        })
        .with_file_name("moto_server");
    assert!(
        moto.exists(),
        "{} is missing: run `cargo xtask setup` to install the S3 test server",
        moto.display()
    );
    let child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

#[test]
fn one_writer_wins_on_s3() {
    let moto = start_moto();
    // Only this test sets AWS_* in this binary.
    std::env::set_var("AWS_ENDPOINT_URL", &moto.endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    // moto takes an unsigned bucket creation; object_store has no call for it.
    create_bucket(&moto.endpoint, "bucket");
    let stores: Vec<Arc<dyn ScratchStore>> = (0..WRITERS)
        .map(|_| {
            Arc::new(ObjectScratch::open("s3://bucket/work/x.rechunk-scratch").unwrap())
                as Arc<dyn ScratchStore>
        })
        .collect();
    race(&stores).unwrap();
    basics(stores[0].as_ref());
    // The prefix is the store's root: nothing leaked outside it, and it is empty again.
    let outside = ObjectScratch::open("s3://bucket").unwrap();
    assert!(outside.is_empty().unwrap());
}

fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
