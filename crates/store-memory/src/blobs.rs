//! `BlobStore` in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chat_domain::AttachmentId;
use chat_ports::{BlobStore, StoreError};

type Blobs = HashMap<AttachmentId, Arc<Vec<u8>>>;

/// The bytes of attachments, in memory. Cloning is cheap and shares the
/// data: clones are handles to the same store. Each blob is stored whole
/// under the lock, so a reader sees the old bytes or the new, never a mix;
/// it is copied out after the lock is released.
#[derive(Clone, Default)]
pub struct MemoryBlobs {
    blobs: Arc<Mutex<Blobs>>,
}

impl std::fmt::Debug for MemoryBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBlobs").finish_non_exhaustive()
    }
}

impl MemoryBlobs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Blobs>, StoreError> {
        self.blobs
            .lock()
            .map_err(|_| StoreError::other("blob store poisoned by a panic"))
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn put(&self, id: AttachmentId, bytes: Vec<u8>) -> Result<(), StoreError> {
        let bytes = Arc::new(bytes);
        self.lock()?.insert(id, bytes);
        Ok(())
    }

    async fn get(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, StoreError> {
        let blob = self.lock()?.get(&id).cloned();
        Ok(blob.map(|b| b.as_ref().clone()))
    }

    async fn delete(&self, id: AttachmentId) -> Result<(), StoreError> {
        self.lock()?.remove(&id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn id() -> AttachmentId {
        AttachmentId(Uuid::now_v7())
    }

    #[tokio::test]
    async fn put_get_replace_delete() {
        let blobs = MemoryBlobs::new();
        let (a, b) = (id(), id());
        assert_eq!(blobs.get(a).await.unwrap(), None);
        blobs.put(a, b"first".to_vec()).await.unwrap();
        blobs.put(b, Vec::new()).await.unwrap();
        assert_eq!(blobs.get(a).await.unwrap(), Some(b"first".to_vec()));
        assert_eq!(
            blobs.get(b).await.unwrap(),
            Some(Vec::new()),
            "an empty blob is a blob"
        );

        blobs.put(a, b"second".to_vec()).await.unwrap();
        assert_eq!(blobs.get(a).await.unwrap(), Some(b"second".to_vec()));

        blobs.delete(a).await.unwrap();
        assert_eq!(blobs.get(a).await.unwrap(), None);
        blobs.delete(a).await.unwrap();
        blobs.delete(id()).await.unwrap();
        assert_eq!(blobs.get(b).await.unwrap(), Some(Vec::new()));
    }

    #[tokio::test]
    async fn clones_share_the_bytes() {
        let blobs = MemoryBlobs::new();
        let clone = blobs.clone();
        let a = id();
        clone.put(a, vec![1, 2, 3]).await.unwrap();
        assert_eq!(blobs.get(a).await.unwrap(), Some(vec![1, 2, 3]));
        blobs.delete(a).await.unwrap();
        assert_eq!(clone.get(a).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn readers_see_whole_blobs_only() {
        let blobs = MemoryBlobs::new();
        let a = id();
        blobs.put(a, vec![0; 64 * 1024]).await.unwrap();
        let writer = {
            let blobs = blobs.clone();
            tokio::spawn(async move {
                for n in 1..=50_u8 {
                    blobs.put(a, vec![n; 64 * 1024]).await.unwrap();
                }
            })
        };
        for _ in 0..200 {
            let bytes = blobs.get(a).await.unwrap().unwrap();
            assert_eq!(bytes.len(), 64 * 1024);
            assert!(bytes.iter().all(|b| *b == bytes[0]), "a torn blob");
        }
        writer.await.unwrap();
        assert_eq!(blobs.get(a).await.unwrap(), Some(vec![50; 64 * 1024]));
    }

    #[test]
    fn a_poisoned_lock_is_a_store_failure() {
        let blobs = MemoryBlobs::new();
        let clone = blobs.clone();
        let _ = std::thread::spawn(move || {
            let _guard = clone.blobs.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(matches!(blobs.lock(), Err(StoreError::Other(_))));
    }
}
