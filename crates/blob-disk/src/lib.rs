//! Attachment bytes as files under one directory (`storage.dir` in the
//! configuration): `<dir>/<last two hex digits of the id>/<id>`, so no
//! directory grows past a few thousand entries. A write goes to a temporary
//! file first and is renamed into place, so a reader never sees half a file.
//!
//! This crate knows `chat-ports` and the file system, nothing else.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chat_domain::AttachmentId;
use chat_ports::{BlobStore, StoreError};

/// The local-disk [`BlobStore`].
#[derive(Debug, Clone)]
pub struct DiskBlobs {
    dir: PathBuf,
}

impl DiskBlobs {
    /// Uses `dir`, creating it if need be.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io(&dir, e))?;
        Ok(Self { dir })
    }

    fn path_of(&self, id: AttachmentId) -> PathBuf {
        let name = id.0.simple().to_string();
        let shard = &name[name.len() - 2..];
        self.dir.join(shard).join(name)
    }
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::other(format!("attachment storage at {}: {e}", path.display()))
}

#[async_trait]
impl BlobStore for DiskBlobs {
    async fn put(&self, id: AttachmentId, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path_of(id);
        let Some(parent) = path.parent() else {
            return Err(StoreError::other("attachment path has no directory"));
        };
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io(parent, e))?;
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| io(&tmp, e))?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(&path, e));
        }
        Ok(())
    }

    async fn get(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(id);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    async fn delete(&self, id: AttachmentId) -> Result<(), StoreError> {
        let path = self.path_of(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!("chat-blob-disk-{}", uuid::Uuid::now_v7()))
    }

    #[tokio::test]
    async fn put_get_delete_round_trip() {
        let dir = scratch();
        let blobs = DiskBlobs::open(&dir).await.unwrap();
        let id = AttachmentId(uuid::Uuid::now_v7());
        assert_eq!(blobs.get(id).await.unwrap(), None);
        blobs.put(id, b"hello".to_vec()).await.unwrap();
        assert_eq!(blobs.get(id).await.unwrap().as_deref(), Some(&b"hello"[..]));
        blobs.put(id, b"again".to_vec()).await.unwrap();
        assert_eq!(blobs.get(id).await.unwrap().as_deref(), Some(&b"again"[..]));
        blobs.delete(id).await.unwrap();
        assert_eq!(blobs.get(id).await.unwrap(), None);
        blobs.delete(id).await.unwrap();
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }

    #[tokio::test]
    async fn survives_a_reopen_and_leaves_no_temporary_files() {
        let dir = scratch();
        let id = AttachmentId(uuid::Uuid::now_v7());
        DiskBlobs::open(&dir)
            .await
            .unwrap()
            .put(id, vec![7; 1000])
            .await
            .unwrap();
        let again = DiskBlobs::open(&dir).await.unwrap();
        assert_eq!(again.get(id).await.unwrap(), Some(vec![7; 1000]));
        let shard = again.path_of(id).parent().unwrap().to_path_buf();
        let mut entries = tokio::fs::read_dir(&shard).await.unwrap();
        let mut names = Vec::new();
        while let Some(e) = entries.next_entry().await.unwrap() {
            names.push(e.file_name());
        }
        assert_eq!(names.len(), 1, "only the blob itself: {names:?}");
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }
}
