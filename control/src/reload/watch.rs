//! Following files on disk: which of them read differently since the last
//! look, however they were changed.
//!
//! Editors rename a new file over the old one, and Kubernetes updates a
//! mounted ConfigMap or Secret without touching the file's name at all: the
//! name is a symlink `config.toml -> ..data/config.toml`, and an update
//! renames a new `..data` symlink over the old one. So the watch does not
//! filter events by name. Any change in a directory a followed path
//! resolves through makes it read every followed path again (following
//! symlinks) and compare with what it read last: a path has changed when,
//! and only when, its content differs.
//!
//! [`Watch`] is the mechanism, for any set of paths; what ringway does when
//! one changes (reload the config file, or read the TLS files again) is
//! decided by its user, [`super::follow`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Events closer together than this are one change: editors and `cp` write
/// a file in several steps, and reading it half-written would be refused;
/// a certificate and its key written one after the other are read
/// together.
pub const SETTLE: Duration = Duration::from_millis(100);

/// The longest a burst of events may put off reading the files: a
/// directory that is never quiet for [`SETTLE`] (a busy shared `/tmp`) must
/// not keep a change from being applied.
const MAX_SETTLE: Duration = Duration::from_secs(1);

/// Symlinks followed before giving up on a chain, as the kernel's own limit
/// for resolving a path (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// A watch on a set of paths: [`Watch::settled`] waits for a burst of
/// changes in their directories to end, [`Watch::changed`] says which of
/// them now read differently.
#[derive(Debug)]
pub struct Watch {
    /// Runs on a thread of its own; each relevant event sends `()`.
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    /// The paths followed, in the order they were first followed.
    followed: Vec<Followed>,
    /// The directories watched now: every followed path's home and the
    /// directories it resolves through (see [`directories`]).
    watched: Vec<PathBuf>,
}

/// One path followed.
#[derive(Debug)]
struct Followed {
    /// The directory holding the path, by its real name: watched for as
    /// long as the path is followed, even while the path does not resolve.
    home: PathBuf,
    content: Content,
}

/// What a path reads, as last seen: the bytes, or why it could not be read.
#[derive(Debug)]
struct Content {
    path: PathBuf,
    seen: Result<Vec<u8>, io::ErrorKind>,
}

impl Watch {
    /// A watch following no path yet. Its first [`Watch::settled`] returns
    /// at once, so that a change made between reading the files and
    /// following them is seen.
    pub fn new() -> notify::Result<Self> {
        let (tx, events) = mpsc::unbounded_channel();
        let _ = tx.send(());
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // An error (such as a lost event queue) may hide a change.
            if event.is_err() || event.is_ok_and(|e| changes_something(e.kind)) {
                let _ = tx.send(());
            }
        })?;
        Ok(Self {
            watcher,
            events,
            followed: Vec::new(),
            watched: Vec::new(),
        })
    }

    /// Follows `path`, whose content is `seen` (read now when `None`),
    /// unless it is followed already. Fails when not even the directory
    /// holding `path` can be watched; the path is not followed then.
    pub fn follow(&mut self, path: &Path, seen: Option<&[u8]>) -> notify::Result<()> {
        if self.follows(path) {
            return Ok(());
        }
        let home = real(parent(path));
        if !self.watched.contains(&home) {
            self.watcher.watch(&home, RecursiveMode::NonRecursive)?;
            self.watched.push(home.clone());
        }
        let seen = match seen {
            Some(bytes) => Ok(bytes.to_vec()),
            None => fs::read(path).map_err(|e| e.kind()),
        };
        self.followed.push(Followed {
            home,
            content: Content {
                path: path.to_owned(),
                seen,
            },
        });
        self.rewatch();
        Ok(())
    }

    /// Whether `path` is followed.
    pub fn follows(&self, path: &Path) -> bool {
        self.followed.iter().any(|f| f.content.path == path)
    }

    /// Stops following the paths `keep` says no to, and watching the
    /// directories only they needed.
    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        let before = self.followed.len();
        self.followed.retain(|f| keep(&f.content.path));
        if self.followed.len() != before {
            self.rewatch();
        }
    }

    /// Records that `path` read `bytes` when they were last dealt with
    /// (a reload read them): only a content other than these is a change.
    pub fn saw(&mut self, path: &Path, bytes: Vec<u8>) {
        if let Some(f) = self.followed.iter_mut().find(|f| f.content.path == path) {
            f.content.seen = Ok(bytes);
        }
    }

    /// Waits for the next event in a watched directory; `false` when no
    /// event can come any more. Cancel-safe: no event is lost when the
    /// future is dropped.
    pub async fn event(&mut self) -> bool {
        self.events.recv().await.is_some()
    }

    /// Waits until the burst of events that [`Watch::event`] saw begin has
    /// settled: [`SETTLE`] without one, or [`MAX_SETTLE`] in all.
    pub async fn settle(&mut self) {
        let latest = Instant::now() + MAX_SETTLE;
        loop {
            let now = Instant::now();
            if now >= latest {
                return;
            }
            match tokio::time::timeout_at((now + SETTLE).min(latest), self.events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Reads every followed path again; the ones that read differently from
    /// the last time, in the order they were followed. Symlinks may point
    /// elsewhere now: the watches follow them there first.
    pub fn changed(&mut self) -> Vec<PathBuf> {
        self.rewatch();
        self.followed
            .iter_mut()
            .filter_map(|f| f.content.changed().then(|| f.content.path.clone()))
            .collect()
    }

    /// Watches the directories the followed paths resolve through now, and
    /// stops watching those none does any more. The directory holding each
    /// path as given is kept for as long as the path is followed.
    fn rewatch(&mut self) {
        let mut wanted: Vec<PathBuf> = Vec::new();
        for f in &self.followed {
            for dir in std::iter::once(f.home.clone()).chain(directories(&f.content.path)) {
                if !wanted.contains(&dir) {
                    wanted.push(dir);
                }
            }
        }
        let watcher = &mut self.watcher;
        self.watched.retain(|dir| {
            if wanted.contains(dir) {
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

    /// A Secret volume holding a certificate and its key (`tls.crt ->
    /// ..data/tls.crt`, ...) and a plain file beside it: a `..data` swap
    /// changes both links' content, a file written in place only its own,
    /// and what ringway wrote itself is no change.
    #[test]
    fn a_watch_says_which_of_its_paths_changed() {
        let scratch = Scratch::new("paths");
        let root = &scratch.0;
        let secret = |stamp: &str, cert: &str, key: &str| {
            fs::create_dir(root.join(stamp)).expect("mkdir");
            fs::write(root.join(stamp).join("tls.crt"), cert).expect("write");
            fs::write(root.join(stamp).join("tls.key"), key).expect("write");
            symlink(stamp, root.join("..data_tmp")).expect("symlink");
            fs::rename(root.join("..data_tmp"), root.join("..data")).expect("rename");
        };
        secret("..v1", "c1", "k1");
        let (crt, key, ca) = (
            root.join("tls.crt"),
            root.join("tls.key"),
            root.join("ca.pem"),
        );
        symlink("..data/tls.crt", &crt).expect("symlink");
        symlink("..data/tls.key", &key).expect("symlink");
        fs::write(&ca, "a1").expect("write");
        let mut watch = Watch::new().expect("a watch");
        for path in [&crt, &key, &ca] {
            watch.follow(path, None).expect("followed");
        }
        watch.follow(&ca, None).expect("followed twice is once");
        assert!(watch.changed().is_empty());
        assert_eq!(watch.watched, vec![root.clone(), root.join("..v1")]);

        secret("..v2", "c2", "k2");
        assert_eq!(watch.changed(), vec![crt.clone(), key.clone()]);
        assert_eq!(watch.watched, vec![root.clone(), root.join("..v2")]);
        fs::write(&ca, "a2").expect("write");
        assert_eq!(watch.changed(), vec![ca.clone()]);

        fs::write(&ca, "a3").expect("write");
        watch.saw(&ca, b"a3".to_vec());
        assert!(watch.changed().is_empty(), "written by ringway itself");

        watch.retain(|p| p == ca);
        assert!(!watch.follows(&crt));
        secret("..v3", "c3", "k3");
        assert!(watch.changed().is_empty(), "no longer followed");
        assert_eq!(watch.watched, vec![root.clone()]);
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
