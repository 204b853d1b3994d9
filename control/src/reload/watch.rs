//! Following the config file on disk: reload when what the path reads has
//! changed, however it was changed.
//!
//! Editors rename a new file over the old one, and Kubernetes updates a
//! mounted ConfigMap without touching the file's name at all: the name is a
//! symlink `config.toml -> ..data/config.toml`, and an update renames a new
//! `..data` symlink over the old one. So the watch does not filter events by
//! name. Any change in a directory the path resolves through makes it read
//! the path again (following symlinks) and compare with what it read last:
//! a reload happens when, and only when, the content differs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::agent::{Agent, Applied};

/// Events closer together than this are one change: editors and `cp` write
/// a file in several steps, and reading it half-written would be refused.
const SETTLE: Duration = Duration::from_millis(100);

/// The longest a burst of events may put off reading the file: a directory
/// that is never quiet for [`SETTLE`] (a busy shared `/tmp`) must not keep
/// a change from being applied.
const MAX_SETTLE: Duration = Duration::from_secs(1);

/// Symlinks followed before giving up on a chain, as the kernel's own limit
/// for resolving a path (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// A watch on the config file at `path`; [`FileWatch::follow`] reloads on
/// each change of its content.
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    /// Runs on a thread of its own; each relevant event sends `()`.
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    /// The directory holding the path, by its real name: watched for as
    /// long as ringway runs, even while the path does not resolve.
    home: PathBuf,
    /// The directories watched now (see [`directories`]), `home` first.
    watched: Vec<PathBuf>,
    content: Content,
}

/// What a path reads, as last seen: the bytes, or why it could not be read.
#[derive(Debug)]
struct Content {
    path: PathBuf,
    seen: Result<Vec<u8>, io::ErrorKind>,
}

impl FileWatch {
    /// Watches `path`, whose content the running configuration came from
    /// (`running`). Fails when not even the directory holding `path` can be
    /// watched.
    pub fn start(path: &Path, running: &[u8]) -> notify::Result<Self> {
        let (tx, events) = mpsc::unbounded_channel();
        // Check once at the start: the file may have changed between the
        // read at start-up and the watch taking hold.
        let _ = tx.send(());
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // An error (such as a lost event queue) may hide a change.
            if event.is_err() || event.is_ok_and(|e| changes_something(e.kind)) {
                let _ = tx.send(());
            }
        })?;
        let home = real(parent(path));
        let mut watch = Self {
            path: path.to_owned(),
            watcher,
            events,
            watched: vec![home.clone()],
            home,
            content: Content {
                path: path.to_owned(),
                seen: Ok(running.to_vec()),
            },
        };
        watch
            .watcher
            .watch(&watch.home, RecursiveMode::NonRecursive)?;
        watch.rewatch();
        Ok(watch)
    }

    /// Reloads the file after each settled burst of events that leaves its
    /// content different from what was read last.
    pub async fn follow(mut self, agent: Rc<Agent>) {
        while self.events.recv().await.is_some() {
            let latest = Instant::now() + MAX_SETTLE;
            loop {
                let now = Instant::now();
                if now >= latest {
                    break;
                }
                match tokio::time::timeout_at((now + SETTLE).min(latest), self.events.recv()).await
                {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            // A symlink may point elsewhere now: follow it there.
            self.rewatch();
            if !self.content.changed() {
                continue;
            }
            let result = agent.reload_file();
            // A file changed back to what already runs is not worth a line.
            if !matches!(result, Ok(Applied::Unchanged(_))) {
                super::log("file change", &result);
            }
        }
    }

    /// Watches the directories the path resolves through now, and stops
    /// watching those it no longer does. The directory holding the path as
    /// given is always kept.
    fn rewatch(&mut self) {
        let wanted = directories(&self.path);
        let (home, watcher) = (&self.home, &mut self.watcher);
        self.watched.retain(|dir| {
            if dir == home || wanted.contains(dir) {
                return true;
            }
            // A directory that is gone took its watch with it.
            let _ = watcher.unwatch(dir);
            false
        });
        for dir in wanted {
            // One that vanished in between is seen at the next change.
            if !self.watched.contains(&dir)
                && watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok()
            {
                self.watched.push(dir);
            }
        }
    }
}

impl Content {
    /// Reads the path again (following symlinks); whether it reads
    /// differently from the last time. A file that cannot be read counts as
    /// changed once, when it stops being readable (the reload then says
    /// why).
    fn changed(&mut self) -> bool {
        let now = fs::read(&self.path).map_err(|e| e.kind());
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }
}

/// Whether an event of `kind` can change what a path reads. Opening and
/// reading cannot (and reading the file ourselves must not wake us); closing
/// a file written to can.
fn changes_something(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The directories whose entries decide what `path` reads: the one holding
/// the path, the one holding each symlink the path leads through, and the
/// one holding the file it ends at, each by its real name.
fn directories(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add = |dir: &Path| {
        let dir = real(dir);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    };
    let mut at = path.to_owned();
    for _ in 0..MAX_LINKS {
        add(parent(&at));
        match fs::read_link(&at) {
            // An absolute target replaces the whole path in `join`.
            Ok(target) => at = parent(&at).join(target),
            Err(_) => break,
        }
    }
    if let Ok(real) = fs::canonicalize(path) {
        add(parent(&real));
    }
    dirs
}

/// `dir` with every symlink resolved, or as given when it cannot be.
fn real(dir: &Path) -> PathBuf {
    fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// The directory holding `path`; `.` for a bare file name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fresh directory under the system's temp dir, by its real name,
    /// removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("ringway-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).expect("creating a scratch dir");
            Self(fs::canonicalize(&dir).expect("the scratch dir has a real name"))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A ConfigMap volume as the kubelet lays it out: `config.toml ->
    /// ..data/config.toml`, `..data -> ..v1`.
    #[test]
    fn directories_follow_a_configmap_layout() {
        let scratch = Scratch::new("configmap");
        let root = &scratch.0;
        fs::create_dir(root.join("..v1")).expect("mkdir");
        fs::write(root.join("..v1/config.toml"), "x").expect("write");
        symlink("..v1", root.join("..data")).expect("symlink");
        symlink("..data/config.toml", root.join("config.toml")).expect("symlink");
        assert_eq!(
            directories(&root.join("config.toml")),
            vec![root.clone(), root.join("..v1")]
        );
    }

    /// Moves `..data` to a new directory holding `text`, as the kubelet
    /// does.
    fn swap(root: &Path, stamp: &str, text: &str) {
        fs::create_dir(root.join(stamp)).expect("mkdir");
        fs::write(root.join(stamp).join("config.toml"), text).expect("write");
        symlink(stamp, root.join("..data_tmp")).expect("symlink");
        fs::rename(root.join("..data_tmp"), root.join("..data")).expect("rename");
    }

    /// Only a change of what the path reads counts: a swap to identical
    /// content, or a file of someone else's, does not.
    #[test]
    fn content_changes_only_when_the_bytes_do() {
        let scratch = Scratch::new("content");
        let root = &scratch.0;
        swap(root, "..v1", "a");
        symlink("..data/config.toml", root.join("config.toml")).expect("symlink");
        let mut content = Content {
            path: root.join("config.toml"),
            seen: Ok(b"a".to_vec()),
        };
        assert!(!content.changed());
        swap(root, "..v2", "a");
        fs::write(root.join("unrelated"), "b").expect("write");
        assert!(!content.changed(), "same bytes through a new ..data");
        swap(root, "..v3", "b");
        assert!(content.changed());
        assert!(!content.changed(), "nothing new since");
        fs::remove_file(root.join("..data")).expect("rm ..data");
        assert!(content.changed(), "unreadable now");
        assert!(!content.changed(), "still unreadable, for the same reason");
        swap(root, "..v4", "b");
        assert!(content.changed(), "readable again");
    }

    #[test]
    fn directories_of_a_plain_file_or_a_missing_one_are_its_own() {
        let scratch = Scratch::new("plain");
        let root = &scratch.0;
        fs::write(root.join("ringway.toml"), "x").expect("write");
        assert_eq!(directories(&root.join("ringway.toml")), vec![root.clone()]);
        assert_eq!(directories(&root.join("missing.toml")), vec![root.clone()]);
        assert_eq!(parent(Path::new("ringway.toml")), Path::new("."));
    }

    #[test]
    fn reading_does_not_count_as_a_change() {
        assert!(!changes_something(EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!changes_something(EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(changes_something(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(changes_something(EventKind::Any));
    }
}
