//! In-memory adapters for every repository port of `chat-ports`: the store the
//! tests and a set-up-free run use. [`MemoryStore`] keeps everything in one
//! `State` behind one mutex, so each port call is trivially one
//! atomic transaction over one consistent snapshot; it passes the same
//! contract suite (`chat_ports::contract`) as the PostgreSQL store.
//! [`MemoryBlobs`] keeps the bytes of attachments (`chat_ports::BlobStore`).
//!
//! This crate must not know about HTTP, SQL, the use cases or any other
//! adapter: it depends on `chat-domain` and `chat-ports` only.

mod attachments;
mod blobs;
mod blocks;
mod messages;
mod rooms;
mod sessions;
mod state;
mod users;

use std::sync::{Arc, Mutex, MutexGuard};

use chat_ports::{StoreError, Stores};

use crate::state::State;

pub use crate::blobs::MemoryBlobs;

/// Every repository in memory. Cloning is cheap and shares the data: clones
/// are handles to the same store.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The repository bundle, every port served by this one store.
    pub fn stores(self: Arc<Self>) -> Stores {
        Stores {
            users: self.clone(),
            sessions: self.clone(),
            blocks: self.clone(),
            rooms: self.clone(),
            messages: self.clone(),
            attachments: self,
        }
    }

    /// The repository bundle of a new, empty store.
    pub fn new_stores() -> Stores {
        Arc::new(Self::new()).stores()
    }

    /// The state, for one port call. The guard is never held across an
    /// `.await`: every port method locks, works synchronously and returns.
    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::other("memory store poisoned by a panic"))
    }
}

impl From<MemoryStore> for Stores {
    fn from(store: MemoryStore) -> Self {
        Arc::new(store).stores()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_a_store_failure() {
        let store = MemoryStore::new();
        let clone = store.clone();
        let _ = std::thread::spawn(move || {
            let _guard = clone.state.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(matches!(store.lock(), Err(StoreError::Other(_))));
    }
}
