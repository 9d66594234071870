//! Where the bytes of attachments live. The record (name, type, size, who
//! uploaded it) is in [`crate::AttachmentRepo`]; the bytes are kept apart so a
//! deployment can put them on a disk (or, later, an object store) of its own.

use async_trait::async_trait;
use chat_domain::AttachmentId;

use crate::StoreError;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the bytes under `id`, whole or not at all: a reader never sees
    /// a half-written blob. Writing an id twice replaces the bytes.
    async fn put(&self, id: AttachmentId, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// The bytes stored under `id`; `None` when there are none.
    async fn get(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Forgets `id`; forgetting an unknown id is not an error.
    async fn delete(&self, id: AttachmentId) -> Result<(), StoreError>;
}
