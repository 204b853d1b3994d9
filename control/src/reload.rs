//! Where reloads come from besides the admin API: SIGHUP and the config
//! file changing on disk; and how every reload is reported on stderr.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::agent::{Agent, Applied, ReloadError};

/// Events closer together than this are one change: editors and `cp` write
/// a file in several steps, and reading it half-written would be refused.
const SETTLE: Duration = Duration::from_millis(100);

/// Reports the outcome of a reload triggered by `trigger` on stderr.
pub fn log(trigger: &str, result: &Result<Applied, ReloadError>) {
    match result {
        Ok(Applied::Published(generation)) => {
            eprintln!("ringway: reload ({trigger}): applied generation {generation}");
        }
        Ok(Applied::Unchanged(generation)) => {
            eprintln!(
                "ringway: reload ({trigger}): configuration unchanged; generation {generation} keeps running"
            );
        }
        Err(ReloadError::Refused(errors)) => {
            for e in &errors.errors {
                eprintln!("ringway: reload ({trigger}): error: {e}");
            }
            eprintln!(
                "ringway: reload ({trigger}): configuration refused ({} error{}); the running one keeps serving",
                errors.errors.len(),
                if errors.errors.len() == 1 { "" } else { "s" }
            );
        }
        Err(e) => eprintln!("ringway: reload ({trigger}): {e}"),
    }
}

/// Watches `path` for changes. The watcher runs on a thread of its own and
/// must be kept alive; each change sends `()` on the receiver.
pub fn watch(path: &Path) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let name = path.file_name().map(|n| n.to_owned());
    // Watch the directory, not the file: an editor that writes a new file
    // and renames it over the old one replaces the inode a file watch
    // would follow.
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_owned()) == name)
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

/// Reloads the file after each settled burst of changes.
pub async fn on_change(agent: Rc<Agent>, mut changes: mpsc::UnboundedReceiver<()>) {
    while changes.recv().await.is_some() {
        loop {
            match tokio::time::timeout(SETTLE, changes.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let result = agent.reload_file();
        // Touching the file, or writing what it already says, changes
        // nothing and is not worth a line.
        if !matches!(result, Ok(Applied::Unchanged(_))) {
            log("file change", &result);
        }
    }
}
