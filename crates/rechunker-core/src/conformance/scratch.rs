//! The contract of [`ScratchStore`], for every implementation: local folders, object stores.

use crate::scratch::{Fetched, ScratchStore};

/// Runs every check on `store`, which must be empty. Leaves it empty.
pub fn scratch_store(store: &dyn ScratchStore) {
    // Its large objects would disturb a memory measurement running beside it.
    let _guard = super::shared();
    let at = store.location();
    assert!(
        store.is_empty().expect("is_empty"),
        "{at}: not empty at the start"
    );
    put_get_replace(store);
    parts(store);
    put_if_absent_races(store);
    list_and_remove(store);
    assert!(
        store.is_empty().expect("is_empty"),
        "{at}: not empty at the end"
    );
}

fn put_get_replace(store: &dyn ScratchStore) {
    let at = store.location();
    assert_eq!(store.get("a/missing").expect("get"), None, "{at}");
    store.put("a/one", b"first").expect("put");
    assert!(
        !store.is_empty().expect("is_empty"),
        "{at}: empty after a put"
    );
    assert_eq!(
        store.get("a/one").expect("get").as_deref(),
        Some(&b"first"[..]),
        "{at}"
    );
    store.put("a/one", b"second, longer").expect("put over");
    assert_eq!(
        store.get("a/one").expect("get").as_deref(),
        Some(&b"second, longer"[..]),
        "{at}: put replaces"
    );
    store.put("a/empty", b"").expect("put empty");
    assert_eq!(
        store.get("a/empty").expect("get").as_deref(),
        Some(&b""[..]),
        "{at}"
    );
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(b"stale contents that are longer");
    assert!(store.get_into("a/one", &mut buf).expect("get_into"), "{at}");
    assert_eq!(buf, b"second, longer", "{at}: get_into replaces the buffer");
    assert!(
        !store.get_into("a/missing", &mut buf).expect("get_into"),
        "{at}"
    );
    store.delete("a/one").expect("delete");
    store
        .delete("a/one")
        .expect("deleting what is gone is no error");
    store.delete("a/empty").expect("delete");
    assert_eq!(store.get("a/one").expect("get"), None, "{at}: deleted");
}

fn parts(store: &dyn ScratchStore) {
    let at = store.location();
    // Large enough for the paths that bypass the page cache (a MiB and more).
    let big: Vec<u8> = (0..(3 << 20) + 4097u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let (head, rest) = big.split_at(1 << 20);
    let (middle, tail) = rest.split_at(12345);
    store
        .put_parts("p/big", &[head, middle, tail])
        .expect("put_parts");
    assert!(
        store.get("p/big").expect("get").as_deref() == Some(&big[..]),
        "{at}: parts joined"
    );
    let mut a = vec![0u8; 7];
    let mut b = vec![0u8; big.len() - 7];
    let fetched = store
        .get_parts("p/big", &mut [&mut a[..], &mut b[..]])
        .expect("get_parts");
    assert_eq!(fetched, Fetched::Read, "{at}");
    assert!(
        a == big[..7] && b == big[7..],
        "{at}: get_parts split differs"
    );
    let mut short = [0u8; 10];
    assert_eq!(
        store
            .get_parts("p/big", &mut [&mut short[..]])
            .expect("get_parts"),
        Fetched::OtherLength,
        "{at}"
    );
    assert_eq!(
        store
            .get_parts("p/none", &mut [&mut short[..]])
            .expect("get_parts"),
        Fetched::Missing,
        "{at}"
    );
    store
        .put_parts("p/small", &[b"ab", b"", b"c"])
        .expect("put_parts");
    let (mut x, mut y) = ([0u8; 1], [0u8; 2]);
    assert_eq!(
        store
            .get_parts("p/small", &mut [&mut x[..], &mut y[..]])
            .expect("get_parts"),
        Fetched::Read,
        "{at}"
    );
    assert_eq!((&x, &y), (b"a", b"bc"), "{at}");
    store.remove_prefix("p/").expect("remove_prefix");
}

/// Of eight threads racing for a key, exactly one wins and its bytes are what is stored.
fn put_if_absent_races(store: &dyn ScratchStore) {
    let at = store.location();
    for round in 0..4 {
        let key = format!("race/{round}");
        let winners: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let key = &key;
                    s.spawn(move || {
                        let data = vec![t as u8; 1000 + t * 100];
                        store.put_if_absent(key, &data).expect("put_if_absent")
                    })
                })
                .collect();
            (handles.into_iter().enumerate())
                .filter_map(|(t, h)| h.join().expect("thread").then_some(t))
                .collect()
        });
        assert_eq!(winners.len(), 1, "{at}: `{key}` won by {winners:?}");
        let t = winners[0];
        assert_eq!(
            store.get(&key).expect("get"),
            Some(vec![t as u8; 1000 + t * 100]),
            "{at}: `{key}` holds other bytes than its winner's"
        );
        assert!(
            !store.put_if_absent(&key, b"late").expect("put_if_absent"),
            "{at}: `{key}` written twice"
        );
    }
    store.remove_prefix("race/").expect("remove_prefix");
}

fn list_and_remove(store: &dyn ScratchStore) {
    let at = store.location();
    for key in ["l/a/b/c", "l/a/d", "l/e", "m/f", "top"] {
        store.put(key, key.as_bytes()).expect("put");
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(store.list("l/").expect("list")),
        ["a/b/c", "a/d", "e"],
        "{at}"
    );
    assert_eq!(
        sorted(store.list("l/a/").expect("list")),
        ["b/c", "d"],
        "{at}"
    );
    assert_eq!(
        sorted(store.list("").expect("list")),
        ["l/a/b/c", "l/a/d", "l/e", "m/f", "top"],
        "{at}"
    );
    assert!(store.list("nothing/").expect("list").is_empty(), "{at}");
    store.remove_prefix("l/a/").expect("remove_prefix");
    assert_eq!(
        sorted(store.list("").expect("list")),
        ["l/e", "m/f", "top"],
        "{at}"
    );
    store
        .remove_prefix("nothing/")
        .expect("removing nothing is no error");
    store.remove_prefix("").expect("remove everything");
    assert!(
        store.list("").expect("list").is_empty(),
        "{at}: left after remove_prefix(\"\")"
    );
}
