//! `AttachmentRepo`.

use async_trait::async_trait;
use chat_domain::{Attachment, AttachmentId, UserId};
use chat_ports::{AttachmentRepo, Conflict, NewAttachment, StoreError};

use crate::MemoryStore;
use crate::state::require_user;

#[async_trait]
impl AttachmentRepo for MemoryStore {
    async fn create(&self, new: &NewAttachment) -> Result<Attachment, StoreError> {
        let mut state = self.lock()?;
        if state.attachments.contains_key(&new.id) {
            return Err(StoreError::Conflict(Conflict::Attachment));
        }
        // PostgreSQL's foreign key: the uploader must exist.
        require_user(&state.users, new.uploader)?;
        let attachment = Attachment {
            id: new.id,
            uploader: new.uploader,
            filename: new.filename.clone(),
            content_type: new.content_type.clone(),
            size: new.size,
            created_at: new.created_at,
        };
        state.attachments.insert(new.id, attachment.clone());
        Ok(attachment)
    }

    async fn find(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError> {
        Ok(self.lock()?.attachments.get(&id).cloned())
    }

    async fn readable_by(&self, id: AttachmentId, user: UserId) -> Result<bool, StoreError> {
        let state = self.lock()?;
        let Some(attachment) = state.attachments.get(&id) else {
            return Ok(false);
        };
        if attachment.uploader == user || state.avatars.contains_key(&id) {
            return Ok(true);
        }
        // The messages that carry it are live ones (a delete forgets them).
        let carried_where_member = state
            .attachment_uses
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|message| state.message_index.get(message))
            .any(|(room, _)| {
                state
                    .rooms
                    .get(room)
                    .is_some_and(|r| r.members.contains_key(&user))
            });
        Ok(carried_where_member)
    }
}
