//! Noticing that the plugins directory changed and has settled.
//!
//! [`PluginsDirWatcher`] watches the plugins directory (recursively) and
//! tells its consumer "the directory settled; rescan it now" once per burst
//! of changes. [`settled_snapshot`] then checks that no package is still
//! being written before the consumer reads any. This module decides *when*
//! to rescan; what a package is and how it is installed belong to
//! [`super::plugins_dir`].
//!
//! # For operators: how to drop a package in
//!
//! Either write each file under a temporary name and rename it into place,
//! or copy the files in directly; the settle window covers the rest. Names
//! that look temporary never start a rescan: a name starting with `.`, or
//! ending with `.tmp`, `.part`, `.swp` or `~`, and anything inside a
//! directory so named. So `cp connector.wasm pkg/.connector.wasm` followed
//! by `mv pkg/.connector.wasm pkg/connector.wasm` triggers one rescan, at
//! the rename. A file copied in directly triggers a rescan once nothing has
//! changed for the settle window, and [`settled_snapshot`] holds the install
//! back while the file is still growing.
//!
//! # Debouncing
//!
//! A burst starts at the first relevant event and ends once no relevant
//! event has arrived for `quiet`; then [`PluginsDirWatcher::changed`]
//! resolves, once. A steady trickle of events keeps postponing the end, but
//! never past [`MAX_WAIT_QUIET_PERIODS`] × `quiet` after the burst started,
//! so a file written forever cannot starve rescans.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::plugins_dir::{MANIFEST_FILE, SIGNATURE_FILE};

/// How many settle windows a burst may last at most before a rescan is due
/// anyway.
pub const MAX_WAIT_QUIET_PERIODS: u32 = 10;

/// Longest settle window honoured; a longer one is shortened to this, which
/// keeps every deadline far from overflowing.
pub const MAX_QUIET: Duration = Duration::from_secs(60 * 60);

/// File-name endings that mark a file as still being written.
const TEMPORARY_SUFFIXES: [&str; 4] = [".tmp", ".part", ".swp", "~"];

/// Why the plugins directory cannot be watched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The operating system refused to watch the directory.
    #[error("cannot watch the plugins directory {}: {reason}", dir.display())]
    Unwatchable {
        /// The plugins directory.
        dir: PathBuf,
        /// What the watcher reported.
        reason: String,
    },
}

/// Watches the plugins directory and reports each settled burst of changes.
///
/// Start it before the initial scan, so nothing that changes between the
/// two is missed.
pub struct PluginsDirWatcher {
    /// Kept alive for as long as events are wanted; dropping it stops them.
    _watcher: RecommendedWatcher,
    events: mpsc::Receiver<()>,
    quiet: Duration,
    burst: Option<Burst>,
}

/// A burst of changes not yet reported.
#[derive(Debug, Clone, Copy)]
struct Burst {
    started: Instant,
    last_event: Instant,
}

impl Burst {
    fn starting_now() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last_event: now,
        }
    }

    /// When the burst counts as settled, unless another event arrives first.
    fn settles_at(&self, quiet: Duration) -> Instant {
        let longest = quiet.saturating_mul(MAX_WAIT_QUIET_PERIODS);
        (self.last_event + quiet).min(self.started + longest)
    }
}

impl PluginsDirWatcher {
    /// Watches `dir` and everything below it; a burst settles after `quiet`
    /// without relevant events (at most [`MAX_QUIET`]).
    pub fn start(dir: &Path, quiet: Duration) -> Result<Self, WatchError> {
        let unwatchable = |err: notify::Error| WatchError::Unwatchable {
            dir: dir.to_path_buf(),
            reason: err.to_string(),
        };
        // One slot is enough: a queued message already means "something
        // changed", and `changed` timestamps it when it takes it, which is
        // no earlier than any event dropped while it waited.
        let (sender, events) = mpsc::channel(1);
        let roots = WatchedRoots::of(dir);
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if roots.is_relevant(&event) {
                // Full means a rescan is already pending; closed means
                // nobody listens any more. Neither needs more.
                let _ = sender.try_send(());
            }
        })
        .map_err(unwatchable)?;
        watcher
            .watch(dir, RecursiveMode::Recursive)
            .map_err(unwatchable)?;
        Ok(Self {
            _watcher: watcher,
            events,
            quiet: quiet.min(MAX_QUIET),
            burst: None,
        })
    }

    /// Resolves once the next burst of changes has settled; `None` once the
    /// watcher has stopped and no burst is pending.
    ///
    /// Cancel-safe: a burst seen by a cancelled call is reported by the
    /// next one.
    pub async fn changed(&mut self) -> Option<()> {
        loop {
            let Some(burst) = self.burst.as_mut() else {
                self.events.recv().await?;
                self.burst = Some(Burst::starting_now());
                continue;
            };
            tokio::select! {
                received = self.events.recv() => match received {
                    Some(()) => burst.last_event = Instant::now(),
                    None => return self.burst.take().map(|_| ()),
                },
                () = tokio::time::sleep_until(burst.settles_at(self.quiet)) => {
                    self.burst = None;
                    return Some(());
                }
            }
        }
    }
}

/// The watched directory as given and as the operating system may report it.
struct WatchedRoots {
    given: PathBuf,
    canonical: Option<PathBuf>,
}

impl WatchedRoots {
    fn of(dir: &Path) -> Self {
        Self {
            given: dir.to_path_buf(),
            canonical: dir.canonicalize().ok(),
        }
    }

    /// Whether `event` could change what a rescan finds.
    fn is_relevant(&self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                // A lost watch or a full queue may hide changes: rescan.
                tracing::warn!(error = %err, "plugins directory watcher reported an error");
                return true;
            }
        };
        if event.need_rescan() || event.paths.is_empty() {
            return true;
        }
        if !changes_content(&event.kind) {
            return false;
        }
        event.paths.iter().any(|path| !self.is_temporary(path))
    }

    /// Whether `path`, or a directory it lies in below the root, has a
    /// temporary name.
    fn is_temporary(&self, path: &Path) -> bool {
        let below_root = path.strip_prefix(&self.given).ok().or_else(|| {
            self.canonical
                .as_deref()
                .and_then(|root| path.strip_prefix(root).ok())
        });
        match below_root {
            Some(relative) => relative.components().any(|component| match component {
                Component::Normal(name) => is_temporary_name(name),
                _ => false,
            }),
            None => path.file_name().is_some_and(is_temporary_name),
        }
    }
}

/// Opening or reading a file (as every rescan does) changes nothing;
/// closing one written to does.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether a file or directory name marks something still being written.
fn is_temporary_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || TEMPORARY_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Size and modification time of one package file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    /// Length in bytes.
    pub len: u64,
    /// Last modification, where the platform records it.
    pub modified: Option<SystemTime>,
}

/// The stamps of one package directory's `connector.toml` and `.wasm` files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PackageSnapshot {
    files: BTreeMap<OsString, FileStamp>,
}

/// What the package files of the plugins directory looked like at one moment.
///
/// Two equal snapshots taken apart mean no package file was written in
/// between, as far as length and modification time tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirSnapshot {
    packages: BTreeMap<OsString, PackageSnapshot>,
}

/// Stamps every file a rescan would read: `connector.toml`, `connector.sig`
/// and the `.wasm` files of each subdirectory of `dir`.
///
/// Blocking file-system work; async callers use [`settled_snapshot`]. Fails
/// only if `dir` itself cannot be listed: a package or file that vanishes
/// while it is read is left out.
pub fn snapshot(dir: &Path) -> io::Result<DirSnapshot> {
    let mut packages = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if let Some(package) = snapshot_package(&path) {
            packages.insert(entry.file_name(), package);
        }
    }
    Ok(DirSnapshot { packages })
}

/// `None` when the directory can no longer be listed.
fn snapshot_package(dir: &Path) -> Option<PackageSnapshot> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if !is_package_file(&path) {
            continue;
        }
        if let Ok(metadata) = std::fs::metadata(&path) {
            let stamp = FileStamp {
                len: metadata.len(),
                modified: metadata.modified().ok(),
            };
            files.insert(entry.file_name(), stamp);
        }
    }
    Some(PackageSnapshot { files })
}

/// The files [`super::plugins_dir::read_package`] reads.
fn is_package_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name == MANIFEST_FILE || name == SIGNATURE_FILE)
        || path.extension().is_some_and(|ext| ext == "wasm")
}

/// Takes snapshots of `dir` `quiet` apart until two in a row are equal, and
/// returns the last; call it before reading packages.
///
/// Compares at most `max_tries` pairs (at least one); if the directory is
/// still changing after that, returns the last snapshot anyway, so a file
/// written forever cannot hold rescans back forever.
pub async fn settled_snapshot(
    dir: &Path,
    quiet: Duration,
    max_tries: usize,
) -> io::Result<DirSnapshot> {
    let quiet = quiet.min(MAX_QUIET);
    let mut previous = snapshot_off_runtime(dir).await?;
    for _ in 0..max_tries.max(1) {
        tokio::time::sleep(quiet).await;
        let current = snapshot_off_runtime(dir).await?;
        if current == previous {
            return Ok(current);
        }
        previous = current;
    }
    Ok(previous)
}

/// [`snapshot`] on the blocking pool, so a slow disk stalls no other task.
async fn snapshot_off_runtime(dir: &Path) -> io::Result<DirSnapshot> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || snapshot(&dir))
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const QUIET: Duration = Duration::from_millis(100);
    /// Long enough that a change is noticed even on a loaded machine.
    const NOTICE_WITHIN: Duration = Duration::from_secs(10);

    fn plugins_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary plugins directory")
    }

    async fn expect_notification(watcher: &mut PluginsDirWatcher) {
        let notified = tokio::time::timeout(NOTICE_WITHIN, watcher.changed())
            .await
            .expect("a notification within the time allowed");
        assert_eq!(notified, Some(()));
    }

    async fn expect_silence(watcher: &mut PluginsDirWatcher) {
        let notified = tokio::time::timeout(QUIET * 3, watcher.changed()).await;
        assert!(notified.is_err(), "unexpected notification");
    }

    fn write_package(dir: &Path) {
        std::fs::create_dir(dir).expect("package directory");
        std::fs::write(dir.join(MANIFEST_FILE), "name = \"a\"\n").expect("manifest");
        let mut wasm = std::fs::File::create(dir.join("a.wasm")).expect("component");
        for chunk in 0..8u8 {
            wasm.write_all(&[chunk; 4096]).expect("component chunk");
        }
        wasm.sync_all().expect("component synced");
    }

    #[test]
    fn temporary_names_are_recognised_and_real_package_files_are_not() {
        for name in [
            ".hidden",
            "x.wasm.part",
            "x.tmp",
            ".x.swp",
            "connector.toml~",
        ] {
            assert!(is_temporary_name(OsStr::new(name)), "{name}");
        }
        for name in ["connector.toml", "a.wasm", "pkg"] {
            assert!(!is_temporary_name(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn a_file_inside_a_hidden_directory_counts_as_temporary() {
        let roots = WatchedRoots::of(Path::new("/plugins"));
        assert!(roots.is_temporary(Path::new("/plugins/.staging/pkg/a.wasm")));
        assert!(!roots.is_temporary(Path::new("/plugins/pkg/a.wasm")));
    }

    #[test]
    fn the_unwatchable_error_names_the_directory() {
        let dir = plugins_dir();
        let missing = dir.path().join("missing");
        let Err(err) = PluginsDirWatcher::start(&missing, QUIET) else {
            panic!("a missing directory cannot be watched");
        };
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn writing_a_package_in_many_writes_gives_exactly_one_notification() {
        let dir = plugins_dir();
        let mut watcher = PluginsDirWatcher::start(dir.path(), QUIET).expect("watcher");
        write_package(&dir.path().join("pkg"));
        expect_notification(&mut watcher).await;
        expect_silence(&mut watcher).await;
    }

    #[tokio::test]
    async fn changes_to_temporary_files_give_no_notification() {
        let dir = plugins_dir();
        let package = dir.path().join("pkg");
        std::fs::create_dir(&package).expect("package directory");
        let mut watcher = PluginsDirWatcher::start(dir.path(), QUIET).expect("watcher");
        std::fs::write(package.join("x.wasm.part"), b"half").expect("partial component");
        std::fs::write(package.join(".hidden"), b"editor state").expect("hidden file");
        std::fs::write(dir.path().join("notes.tmp"), b"scratch").expect("temporary file");
        expect_silence(&mut watcher).await;
    }

    #[tokio::test]
    async fn renaming_a_temporary_file_into_place_gives_a_notification() {
        let dir = plugins_dir();
        let package = dir.path().join("pkg");
        std::fs::create_dir(&package).expect("package directory");
        let mut watcher = PluginsDirWatcher::start(dir.path(), QUIET).expect("watcher");
        std::fs::write(package.join("a.wasm.part"), b"component").expect("partial component");
        std::fs::rename(package.join("a.wasm.part"), package.join("a.wasm")).expect("rename");
        expect_notification(&mut watcher).await;
    }

    #[tokio::test]
    async fn a_package_directory_created_after_start_is_noticed_with_its_later_changes() {
        let dir = plugins_dir();
        let mut watcher = PluginsDirWatcher::start(dir.path(), QUIET).expect("watcher");
        let package = dir.path().join("late");
        std::fs::create_dir(&package).expect("package directory");
        expect_notification(&mut watcher).await;
        std::fs::write(package.join(MANIFEST_FILE), "name = \"late\"\n").expect("manifest");
        expect_notification(&mut watcher).await;
    }

    #[tokio::test]
    async fn reading_the_packages_during_a_rescan_gives_no_notification() {
        let dir = plugins_dir();
        let package = dir.path().join("pkg");
        write_package(&package);
        let mut watcher = PluginsDirWatcher::start(dir.path(), QUIET).expect("watcher");
        super::super::plugins_dir::read_package(&package).expect("package reads");
        snapshot(dir.path()).expect("snapshot");
        expect_silence(&mut watcher).await;
    }

    #[tokio::test]
    async fn a_file_written_without_pause_still_gives_a_notification() {
        let dir = plugins_dir();
        let mut watcher = PluginsDirWatcher::start(dir.path(), QUIET).expect("watcher");
        let file = dir.path().join("busy.wasm");
        // Never pauses for a whole settle window: only the cap on a burst's
        // length lets the notification through.
        let writer = tokio::spawn(async move {
            for n in 0u64.. {
                std::fs::write(&file, n.to_string()).expect("busy file");
                tokio::time::sleep(QUIET / 4).await;
            }
        });
        expect_notification(&mut watcher).await;
        assert!(!writer.is_finished(), "the writer is still writing");
        writer.abort();
        let _ = writer.await;
    }

    #[tokio::test]
    async fn settled_snapshot_waits_until_a_growing_file_stops_growing() {
        let dir = plugins_dir();
        let package = dir.path().join("pkg");
        std::fs::create_dir(&package).expect("package directory");
        let wasm = package.join("a.wasm");
        std::fs::write(&wasm, b"start").expect("first chunk");
        let appended = wasm.clone();
        let writer = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&appended)
                    .expect("component opens");
                file.write_all(b"more bytes").expect("chunk appended");
            }
        });
        let settled = settled_snapshot(dir.path(), Duration::from_millis(250), 50)
            .await
            .expect("settled snapshot");
        writer.await.expect("writer finished");
        let final_len = std::fs::metadata(&wasm).expect("component").len();
        let stamp = settled.packages[OsStr::new("pkg")].files[OsStr::new("a.wasm")];
        assert_eq!(stamp.len, final_len);
        assert_eq!(settled, snapshot(dir.path()).expect("final snapshot"));
    }

    #[test]
    fn a_snapshot_holds_only_package_files_of_subdirectories() {
        let dir = plugins_dir();
        write_package(&dir.path().join("pkg"));
        std::fs::write(dir.path().join("pkg").join("README.md"), b"notes").expect("readme");
        std::fs::write(dir.path().join("stray.wasm"), b"top level").expect("stray file");
        let snap = snapshot(dir.path()).expect("snapshot");
        let names: Vec<_> = snap.packages.keys().cloned().collect();
        assert_eq!(names, vec![OsString::from("pkg")]);
        let package = &snap.packages[OsStr::new("pkg")];
        let files: Vec<_> = package.files.keys().cloned().collect();
        assert_eq!(
            files,
            vec![OsString::from("a.wasm"), OsString::from(MANIFEST_FILE)]
        );
        assert_eq!(package.files[OsStr::new("a.wasm")].len, 8 * 4096);
    }
}
