//! A [`Factory`] for adapters that store on the local disk.

use super::Factory;
use crate::{DatasetSource, DatasetTarget};
use std::path::{Path, PathBuf};

/// A [`Factory`] for datasets stored at `root/NAME` on the local disk, from two functions.
pub struct LocalFactory<C, O> {
    root: PathBuf,
    create: C,
    open: O,
    /// Whatever keeps `root` alive (a temporary folder), dropped with the factory.
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl<C, O> LocalFactory<C, O>
where
    C: Fn(&Path) -> crate::Result<Box<dyn DatasetTarget>> + Sync,
    O: Fn(&Path) -> crate::Result<Box<dyn DatasetSource>> + Sync,
{
    /// `create(path)` makes a target at `path`, `open(path)` opens it. Each dataset gets a
    /// folder `root/NAME` of its own, holding the dataset at `root/NAME/data`, so that side
    /// files of a format (`data.partial`) are seen by [`Factory::stored`] too.
    pub fn new(root: impl Into<PathBuf>, create: C, open: O) -> Self {
        LocalFactory {
            root: root.into(),
            create,
            open,
            _guard: None,
        }
    }

    /// The same factory, owning `guard` (e.g. the `tempfile::TempDir` of `root`) until dropped.
    pub fn owning(mut self, guard: impl Send + Sync + 'static) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("data")
    }
}

impl<C, O> Factory for LocalFactory<C, O>
where
    C: Fn(&Path) -> crate::Result<Box<dyn DatasetTarget>> + Sync,
    O: Fn(&Path) -> crate::Result<Box<dyn DatasetSource>> + Sync,
{
    fn create(&self, name: &str) -> crate::Result<Box<dyn DatasetTarget>> {
        let folder = self.root.join(name);
        std::fs::create_dir_all(&folder)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
        (self.create)(&self.path(name))
    }

    fn open(&self, name: &str) -> crate::Result<Box<dyn DatasetSource>> {
        (self.open)(&self.path(name))
    }

    fn stored(&self, name: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        walk(&self.root.join(name), "", &mut out);
        out.sort();
        Some(out)
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{rel}{}", entry.file_name().to_string_lossy());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&entry.path(), &format!("{name}/"), out);
        }
        out.push(name);
    }
}
