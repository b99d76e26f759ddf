//! One open state database per folder per process.
//!
//! sled takes an exclusive `flock` on its database file when it opens it, and gives it up only when the last
//! handle (its `Db` and every `Tree` taken from it) is dropped. `flock` locks belong to an open file, not to a
//! process, so a second `sled::open` of the same folder in the same process fails with "could not acquire
//! lock" while any handle of the first is alive. In relayd that happens when a relay is restarted in place
//! (an embedding host stops relayd and starts it again): the stopped relay's actors, timers and blocking
//! tasks hold store clones for a while after `shutdown` returns. Tests and tools that open the store of a
//! relay running in the same process hit it too.
//!
//! The cause is the second open, so there is none: every open of a folder shares the handle that is still
//! alive. The registry keeps only weak references, so the database is closed (and its lock released) as soon
//! as the last user drops it; an open that races with that close waits for the close to finish instead of
//! failing. The drop of the last handle flushes and closes, but sled's background threads may hold the file (and
//! its lock) a moment longer, so an open of a folder this process closed moments ago first waits, bounded, until
//! the lock is free.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::{StoreError, Trees};

/// Open databases by canonical folder: the id of the handle and a weak reference to it.
type Registry = HashMap<PathBuf, (u64, Weak<Shared>)>;

/// Folders whose database this process closed, and when: their lock may outlive the close for a moment.
static RECENTLY_CLOSED: Mutex<Option<HashMap<PathBuf, Instant>>> = Mutex::new(None);
/// How long after a close an open still checks the lock.
const CLOSE_SETTLES: Duration = Duration::from_secs(30);
/// The longest an open waits for a lock its own process's closed database still holds.
const LOCK_WAIT: Duration = Duration::from_secs(5);

static OPEN: Mutex<Option<Registry>> = Mutex::new(None);
static CLOSED: Condvar = Condvar::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An open database and, for one opened from a folder, its registration.
pub(super) struct Shared {
    /// The trees. Declared before `_release` so that the database is closed before the registration goes.
    pub(super) trees: Trees,
    /// Record writes that may wait a moment (see `store::soon`), written before the trees close.
    pub(super) soon: Mutex<super::PacketBatch>,
    /// The waiting writes being written: reads still see them until they are in the trees.
    pub(super) writing: Mutex<Option<Arc<super::PacketBatch>>>,
    /// Held while waiting writes are taken and written, so they reach the trees in the order they were made.
    pub(super) writer: Mutex<()>,
    _release: Option<Release>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let batch = std::mem::take(self.soon.get_mut().unwrap_or_else(PoisonError::into_inner));
        if let Err(e) = super::batch::write(&self.trees, &batch) {
            tracing::warn!(records = batch.len(), error = %e, "cannot write the last lifecycle records on close");
        }
    }
}

impl Shared {
    /// The writes waiting, locked. Every change under the lock leaves the batch whole, so a panic elsewhere
    /// cannot have corrupted it.
    pub(super) fn soon(&self) -> MutexGuard<'_, super::PacketBatch> {
        self.soon.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The waiting writes being written, if any, locked (only to look or to set).
    pub(super) fn writing(&self) -> MutexGuard<'_, Option<Arc<super::PacketBatch>>> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer's turn: one taking and writing of waiting writes at a time.
    pub(super) fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A database that no other open can share (temporary databases, databases opened by the caller).
    pub(super) fn unregistered(trees: Trees) -> Arc<Self> {
        let shared = Arc::new(Self {
            trees,
            soon: Mutex::default(),
            writing: Mutex::default(),
            writer: Mutex::default(),
            _release: None,
        });
        super::soon::start_flusher(&shared);
        shared
    }
}

/// Removes a closed database from the registry and wakes the opens waiting for it.
struct Release {
    path: PathBuf,
    id: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut open = registry();
        let map = open.get_or_insert_with(HashMap::new);
        if map.get(&self.path).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.path);
        }
        closed_now(&self.path);
        drop(open);
        CLOSED.notify_all();
    }
}

fn registry() -> MutexGuard<'static, Option<Registry>> {
    // A panic while the registry was held left it consistent (every change is a single insert or remove).
    OPEN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The database in `path`: the handle already open in this process, or a new one made by `open`.
pub(super) fn open_shared(
    path: &Path,
    open: impl FnOnce(&Path) -> Result<Trees, StoreError>,
) -> Result<Arc<Shared>, StoreError> {
    let io = |source| StoreError::Path {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    let canonical = path.canonicalize().map_err(io)?;
    let mut guard = registry();
    loop {
        let map = guard.get_or_insert_with(HashMap::new);
        match map.get(&canonical) {
            Some((_, weak)) => {
                if let Some(live) = weak.upgrade() {
                    return Ok(live);
                }
                // Its last handle is being dropped on another thread; the close ends with the removal.
                guard = CLOSED
                    .wait(guard)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            None => break,
        }
    }
    if recently_closed(&canonical) {
        wait_for_lock(&canonical.join("db"));
    }
    let trees = open(&canonical)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(Shared {
        trees,
        soon: Mutex::default(),
        writing: Mutex::default(),
        writer: Mutex::default(),
        _release: Some(Release {
            path: canonical.clone(),
            id,
        }),
    });
    guard
        .get_or_insert_with(HashMap::new)
        .insert(canonical, (id, Arc::downgrade(&shared)));
    super::soon::start_flusher(&shared);
    Ok(shared)
}

fn closed_registry() -> MutexGuard<'static, Option<HashMap<PathBuf, Instant>>> {
    RECENTLY_CLOSED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn closed_now(path: &Path) {
    let mut closed = closed_registry();
    let map = closed.get_or_insert_with(HashMap::new);
    map.retain(|_, at| at.elapsed() < CLOSE_SETTLES);
    map.insert(path.to_owned(), Instant::now());
}

fn recently_closed(path: &Path) -> bool {
    closed_registry()
        .as_ref()
        .and_then(|map| map.get(path))
        .is_some_and(|at| at.elapsed() < CLOSE_SETTLES)
}

/// Waits, at most [`LOCK_WAIT`], until nothing holds the lock on the database file `db` (sled locks it with
/// `flock`, as `File::try_lock` does). Whatever still holds it after that, the open that follows reports.
fn wait_for_lock(db: &Path) {
    let Ok(file) = std::fs::File::open(db) else {
        return;
    };
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                return;
            }
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}
