//! Uploading and downloading attachments.

use std::sync::Arc;

use chat_domain::attachment::{
    check_content, content_type_from_name, normalize_content_type, sanitize_filename,
};
use chat_domain::{Attachment, AttachmentId, UserId};
use chat_ports::NewAttachment;

use crate::{AppError, Ctx};

/// A file as it arrived, its size already checked against the limit.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The name the client gave, if any (sanitised here).
    pub filename: Option<String>,
    /// The type the client declared, if any.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Clone)]
pub struct Attachments {
    ctx: Arc<Ctx>,
}

impl Attachments {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// Stores an upload: its bytes in the blob store, then its record. The
    /// filename is sanitised; a missing or generic type is taken from the
    /// name; an inline image type must match the bytes.
    pub async fn upload(&self, me: UserId, upload: Upload) -> Result<Attachment, AppError> {
        let c = &self.ctx;
        let filename = sanitize_filename(upload.filename.as_deref().unwrap_or(""));
        let declared = match upload.content_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(normalize_content_type(raw).ok_or_else(|| {
                AppError::invalid("file", "has a content type that is not a MIME type")
            })?),
        };
        let content_type = match declared {
            Some(t) if t != "application/octet-stream" => t,
            _ => content_type_from_name(&filename).to_owned(),
        };
        check_content(&content_type, &upload.bytes)
            .map_err(|e| AppError::invalid("file", e.to_string()))?;
        let id = AttachmentId(c.ids.new_id());
        let record = NewAttachment {
            id,
            uploader: me,
            filename,
            content_type,
            size: upload.bytes.len() as u64,
            created_at: c.clock.now(),
        };
        c.blobs.put(id, upload.bytes).await?;
        match c.stores.attachments.create(&record).await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                // Leave no orphaned bytes behind a failed upload.
                if let Err(cleanup) = c.blobs.delete(id).await {
                    tracing::warn!(attachment = %id.0, error = %cleanup, "could not remove the bytes of a failed upload");
                }
                Err(e.into())
            }
        }
    }

    /// The record and bytes of an attachment the caller may read: the
    /// uploader, a member of a room where a message carries it, or anyone for
    /// a user's avatar. Everything else is 404.
    pub async fn download(
        &self,
        me: UserId,
        id: AttachmentId,
    ) -> Result<(Attachment, Vec<u8>), AppError> {
        let c = &self.ctx;
        if !c.stores.attachments.readable_by(id, me).await? {
            return Err(AppError::NotFound);
        }
        let attachment = c
            .stores
            .attachments
            .find(id)
            .await?
            .ok_or(AppError::NotFound)?;
        let bytes = c.blobs.get(id).await?.ok_or(AppError::NotFound)?;
        Ok((attachment, bytes))
    }
}
