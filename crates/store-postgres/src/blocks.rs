//! `BlockRepo`.

use async_trait::async_trait;
use chat_domain::{Timestamp, User, UserId};
use chat_ports::{BlockRepo, Page, PageRequest, StoreError};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::PgStore;
use crate::page::{overfetch, time_cursor, time_position};
use crate::rows::UserRow;
use crate::schema::{blocks, users};

#[async_trait]
impl BlockRepo for PgStore {
    async fn block(
        &self,
        blocker: UserId,
        blocked: UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                // A user that does not exist breaks a foreign key: NotFound.
                let inserted = diesel::insert_into(blocks::table)
                    .values((
                        blocks::blocker_id.eq(blocker.0),
                        blocks::blocked_id.eq(blocked.0),
                        blocks::blocked_at.eq(at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await?;
                Ok(inserted == 1)
            })
        })
        .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let deleted = diesel::delete(blocks::table.find((blocker.0, blocked.0)))
                    .execute(c)
                    .await?;
                Ok(deleted == 1)
            })
        })
        .await
    }

    async fn either_blocks(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let either = blocks::table.filter(
                    (blocks::blocker_id.eq(a.0).and(blocks::blocked_id.eq(b.0)))
                        .or(blocks::blocker_id.eq(b.0).and(blocks::blocked_id.eq(a.0))),
                );
                Ok(diesel::select(exists(either)).get_result(c).await?)
            })
        })
        .await
    }

    async fn list(&self, blocker: UserId, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let after = time_position(page.after.as_ref())?;
        let limit = page.limit();
        let fetch = overfetch(page);
        self.query(move |c| {
            Box::pin(async move {
                let mut query = blocks::table
                    .inner_join(users::table.on(users::id.eq(blocks::blocked_id)))
                    .filter(blocks::blocker_id.eq(blocker.0))
                    .select((blocks::blocked_at, UserRow::as_select()))
                    .order((blocks::blocked_at.desc(), blocks::blocked_id.desc()))
                    .limit(fetch)
                    .into_boxed();
                if let Some((t, id)) = after {
                    query = query.filter(
                        blocks::blocked_at
                            .lt(t)
                            .or(blocks::blocked_at.eq(t).and(blocks::blocked_id.lt(id))),
                    );
                }
                let rows: Vec<(Timestamp, UserRow)> = query.load(c).await?;
                let rows = rows
                    .into_iter()
                    .map(|(at, u)| User::try_from(u).map(|u| (at, u)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(
                    Page::from_overfetch(rows, limit, |(at, u)| time_cursor(*at, u.id.0))
                        .map(|(_, u)| u),
                )
            })
        })
        .await
    }
}
