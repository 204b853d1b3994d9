//! What ringway follows on disk, and what it does when one changes: the
//! config file (reloaded, as `SIGHUP` does) and every file the running
//! table read TLS material from (the running configuration applied again,
//! which reads them anew).
//!
//! One [`Watch`] and one task for both, so that decisions are taken one at
//! a time: a burst that changes the config file and a certificate reloads
//! once (a reload reads the certificates too). The TLS files followed are
//! those of the newest compiled table ([`Agent::tls_files`]): a reload
//! that adds or drops a certificate moves the watch with it. Each compile
//! also says what the files held when it read them, so a change is judged
//! against what runs: a change made between a reload and the watch's next
//! look is not missed, and a reload that already read a change (`SIGHUP`,
//! `PUT /tls/...`) is not followed by a second one.
//!
//! A certificate and its key written one after the other, more than
//! [`SETTLE`](super::watch::SETTLE) apart, are read in between: the pair
//! does not match, the table is refused with that error and the old
//! material keeps serving; the key's own change then applies the pair.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::watch::Watch;
use crate::agent::{Agent, Applied, FilesRead};

/// Follows the config file (if any) and the running table's TLS files.
#[derive(Debug)]
pub struct Follower {
    /// The config file `ringway run` was given.
    config: Option<PathBuf>,
    /// `None` until there is something to follow (the embedded default
    /// configuration reads no file), or while no watch can be had.
    watch: Option<Watch>,
    /// The TLS files followed: those of the newest table.
    files: Vec<PathBuf>,
}

impl Follower {
    /// Follows the config file at `path`, whose content the running
    /// configuration came from (`source`), and `files`, the TLS files its
    /// table read (and what they held). Without a watch (inotify instances
    /// exhausted, say) ringway still runs and reloads on `SIGHUP` and the
    /// admin API: that is said on stderr rather than refused.
    pub fn start(path: Option<&Path>, source: &str, files: &FilesRead) -> Self {
        let mut follower = Self {
            config: path.map(Path::to_owned),
            watch: None,
            files: Vec::new(),
        };
        if let Some(path) = path {
            let watch = Watch::new().and_then(|mut watch| {
                watch.follow(path, Some(source.as_bytes()))?;
                Ok(watch)
            });
            match watch {
                Ok(watch) => follower.watch = Some(watch),
                Err(e) => eprintln!(
                    "ringway: warning: cannot watch {} for changes ({e}); reload with SIGHUP or `ringway reload`",
                    path.display()
                ),
            }
        }
        follower.follow_files(files);
        follower
    }

    /// Applies what changes, for as long as the agent runs.
    pub async fn run(mut self, agent: Rc<Agent>) {
        let mut tables = agent.tls_files();
        // A table published between `start` and now names its files.
        tables.mark_changed();
        loop {
            let burst = match self.watch.as_mut() {
                Some(watch) => tokio::select! {
                    alive = watch.event() => {
                        if !alive {
                            return;
                        }
                        true
                    }
                    table = tables.changed() => {
                        if table.is_err() {
                            return;
                        }
                        false
                    }
                },
                None => {
                    if tables.changed().await.is_err() {
                        return;
                    }
                    false
                }
            };
            if burst {
                if let Some(watch) = self.watch.as_mut() {
                    watch.settle().await;
                }
            }
            if tables.has_changed().unwrap_or(false) || !burst {
                let files = Arc::clone(&tables.borrow_and_update());
                self.follow_files(&files);
            }
            if burst {
                self.apply_changes(&agent);
            }
        }
    }

    /// Follows `files` (and the config file) and nothing else, taking
    /// what each held as the content in service.
    fn follow_files(&mut self, files: &FilesRead) {
        if self.watch.is_none() && !files.is_empty() {
            match Watch::new() {
                Ok(watch) => self.watch = Some(watch),
                Err(e) => {
                    eprintln!(
                        "ringway: warning: cannot watch the TLS files for changes ({e}); \
                         apply new ones with SIGHUP, `ringway reload` or `ringway tls push`"
                    );
                    return;
                }
            }
        }
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        // New files are followed before old ones are dropped, so that a
        // directory both use stays watched throughout.
        for (path, held) in files.iter() {
            if watch.follows(path) {
                if let Some(bytes) = held {
                    watch.saw(path, bytes.clone());
                }
            } else if let Err(e) = watch.follow(path, held.as_deref()) {
                // Said once per file, not at every reload.
                if !self.files.contains(path) {
                    eprintln!(
                        "ringway: warning: cannot watch {} for changes ({e}); \
                         apply a new one with SIGHUP, `ringway reload` or `ringway tls push`",
                        path.display()
                    );
                }
            }
        }
        let config = self.config.as_deref();
        watch.retain(|p| Some(p) == config || files.iter().any(|(f, _)| f == p));
        self.files = files.iter().map(|(f, _)| f.clone()).collect();
    }

    /// Reads the followed files after a burst and applies what changed:
    /// the config file is reloaded; changed TLS files alone apply the
    /// running configuration again.
    fn apply_changes(&mut self, agent: &Rc<Agent>) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        let changed = watch.changed();
        if changed.is_empty() {
            return;
        }
        let config = self.config.as_deref();
        if changed.iter().any(|p| Some(p.as_path()) == config) {
            let result = agent.reload_file();
            // A file changed back to what already runs is not worth a line.
            if !matches!(result, Ok(Applied::Unchanged(_))) {
                super::log("file change", &result);
            }
            return;
        }
        let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        let result = agent.reread_files();
        super::log(&format!("file change: {}", names.join(", ")), &result);
    }
}
