//! `AttachmentRepo`.

use async_trait::async_trait;
use chat_domain::{Attachment, AttachmentId, UserId};
use chat_ports::{AttachmentRepo, NewAttachment, StoreError};
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::PgStore;
use crate::rows::{AttachmentRow, NewAttachmentRow, to_i64};
use crate::schema::{attachments, memberships, messages, users};

#[async_trait]
impl AttachmentRepo for PgStore {
    async fn create(&self, new: &NewAttachment) -> Result<Attachment, StoreError> {
        let new = new.clone();
        let size = to_i64(new.size, "size")?;
        self.query(move |c| {
            Box::pin(async move {
                // A taken id breaks the primary key (`Conflict { what:
                // "attachment" }`); an unknown uploader its foreign key
                // (`NotFound`), checked after it.
                let row = diesel::insert_into(attachments::table)
                    .values(NewAttachmentRow {
                        id: new.id.0,
                        uploader_id: new.uploader.0,
                        filename: &new.filename,
                        content_type: &new.content_type,
                        size,
                        // The blob store keeps the bytes under the id.
                        storage_key: new.id.to_string(),
                        created_at: new.created_at,
                    })
                    .returning(AttachmentRow::as_returning())
                    .get_result(c)
                    .await?;
                Ok(Attachment::try_from(row)?)
            })
        })
        .await
    }

    async fn find(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row = attachments::table
                    .find(id.0)
                    .select(AttachmentRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(Attachment::try_from).transpose()?)
            })
        })
        .await
    }

    async fn readable_by(&self, id: AttachmentId, user: UserId) -> Result<bool, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                // One statement, cheapest test first: the uploader (primary
                // key), a live message in one of the user's rooms
                // (`messages_attachment_id_idx`), anyone's avatar
                // (`users_avatar_attachment_id_idx`). An unknown attachment
                // passes none of them.
                let uploaded = exists(
                    attachments::table
                        .filter(attachments::id.eq(id.0))
                        .filter(attachments::uploader_id.eq(user.0)),
                );
                let carried = exists(
                    messages::table
                        .inner_join(
                            memberships::table.on(memberships::room_id
                                .eq(messages::room_id)
                                .and(memberships::user_id.eq(user.0))),
                        )
                        .filter(messages::attachment_id.eq(id.0))
                        .filter(not(messages::deleted)),
                );
                let avatar = exists(users::table.filter(users::avatar_attachment_id.eq(id.0)));
                Ok(diesel::select(uploaded.or(carried).or(avatar))
                    .get_result(c)
                    .await?)
            })
        })
        .await
    }
}
