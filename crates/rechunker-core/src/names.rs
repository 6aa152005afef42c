//! Names are data, not paths: the one place that turns a variable or group name from a source
//! into a file-system path below a target or scratch root.
//!
//! A name comes from the file being read, and the file may be hostile: an HDF5 link or a Zarr
//! member called `..`, an absolute `/etc/x`, a component holding a NUL. Joined to a root as they
//! are, such names escape it (`Path::join` even replaces the root with an absolute name). Every
//! component is therefore percent-escaped so that it is always one plain folder or file name:
//! the mapping never leaves the root, and distinct names give distinct paths.

use std::path::{Component, Path, PathBuf};

/// One name component as a file name that is always a single ordinary component: `%`, `/`,
/// `\` and NUL are percent-encoded, as are the dots of `.` and `..`; an empty name is a lone
/// `%`, which no other name encodes to (every other `%` is followed by two hex digits).
pub fn path_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '\\' => out.push_str("%5C"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return "%".into();
    }
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    out
}

/// A hierarchical name (`group/sub/var`, a leading `/` meaning the root group) as a relative
/// path of escaped components (see [`path_component`]): `grp/tas` stays two folders, `..`
/// becomes `%2E%2E`, `/abs` becomes `abs`.
pub fn relative_path(name: &str) -> PathBuf {
    let trimmed = name.trim_matches('/');
    if trimmed.is_empty() {
        return PathBuf::from(path_component(trimmed));
    }
    trimmed.split('/').map(path_component).collect()
}

/// True when `path` is relative and made only of ordinary components, so that joining it to
/// a root can only name something below that root.
pub fn stays_below_root(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// A `/`-separated key of our own (scratch pieces, journal entries) as a relative path, or
/// `None` if any component could leave the root. Keys are made by rechunk, never taken from a
/// file, so a bad one is a bug or a damaged plan: callers turn `None` into an error.
pub fn key_path(key: &str) -> Option<PathBuf> {
    let path: PathBuf = key.split('/').collect();
    let plain = key
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains(['\\', '\0']));
    (plain && stays_below_root(&path)).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_names_stay_one_component() {
        assert_eq!(path_component(".."), "%2E%2E");
        assert_eq!(path_component("."), "%2E");
        assert_eq!(path_component(""), "%");
        assert_eq!(path_component("\0"), "%00");
        assert_eq!(path_component("a/b"), "a%2Fb");
        assert_eq!(path_component("50%"), "50%25");
        assert_eq!(path_component("tas"), "tas");
        assert_eq!(path_component("..."), "...");
        assert_eq!(relative_path("/etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(relative_path("grp/../x"), PathBuf::from("grp/%2E%2E/x"));
        assert_eq!(relative_path("/"), PathBuf::from("%"));
        assert_eq!(relative_path("a//b"), PathBuf::from("a/%/b"));
    }

    #[test]
    fn keys_of_our_own_are_checked() {
        assert_eq!(
            key_path("arrays/0/s1/3"),
            Some(PathBuf::from("arrays/0/s1/3"))
        );
        for bad in [
            "",
            "../x",
            "a/../../b",
            "/abs",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0",
        ] {
            assert_eq!(key_path(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the name, the path stays below the root.
        #[test]
        fn any_name_stays_below_the_root(name in any::<String>()) {
            let rel = relative_path(&name);
            prop_assert!(stays_below_root(&rel), "{name:?} -> {rel:?}");
            let root = Path::new("/data/target");
            prop_assert!(root.join(&rel).starts_with(root));
            let one = path_component(&name);
            prop_assert!(stays_below_root(Path::new(&one)));
            prop_assert_eq!(Path::new(&one).components().count(), 1);
        }

        /// Names made of the characters that need escaping, dots and slashes included.
        #[test]
        fn tricky_names_stay_below_the_root(name in "[./%\\\\\0a]{0,12}") {
            let rel = relative_path(&name);
            prop_assert!(stays_below_root(&rel), "{name:?} -> {rel:?}");
            let one = path_component(&name);
            prop_assert_eq!(Path::new(&one).components().count(), 1);
        }

        /// Distinct components never share a file name.
        #[test]
        fn components_are_distinct(a in "[./%\\\\\0a]{0,6}", b in "[./%\\\\\0a]{0,6}") {
            prop_assume!(a != b);
            prop_assert_ne!(path_component(&a), path_component(&b));
        }
    }
}
