//! `SessionRepo`.

use async_trait::async_trait;
use chat_domain::{SessionId, Timestamp, UserId};
use chat_ports::{Rotation, Session, SessionRepo, StoreError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::PgStore;
use crate::rows::{to_i64, to_u64};
use crate::schema::sessions;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    generation: i64,
    created_at: Timestamp,
    expires_at: Timestamp,
    revoked: bool,
}

impl SessionRow {
    fn from_session(s: &Session) -> Result<Self, StoreError> {
        Ok(Self {
            id: s.id.0,
            user_id: s.user_id.0,
            generation: to_i64(s.generation, "session generation")?,
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked: s.revoked,
        })
    }

    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: SessionId(self.id),
            user_id: UserId(self.user_id),
            generation: to_u64(self.generation, "sessions.generation")?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked: self.revoked,
        })
    }
}

#[async_trait]
impl SessionRepo for PgStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let row = SessionRow::from_session(session)?;
        self.query(move |c| {
            Box::pin(async move {
                // No such user: the foreign key answers NotFound.
                diesel::insert_into(sessions::table)
                    .values(&row)
                    .execute(c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row: Option<SessionRow> = sessions::table
                    .find(id.0)
                    .select(SessionRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(SessionRow::into_session).transpose()?)
            })
        })
        .await
    }

    async fn rotate(
        &self,
        id: SessionId,
        generation: u64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Rotation, StoreError> {
        self.write(move |c| {
            Box::pin(async move {
                // The row lock makes concurrent rotations of one session take
                // turns: the second sees the first one's generation.
                let row: Option<SessionRow> = sessions::table
                    .find(id.0)
                    .select(SessionRow::as_select())
                    .for_update()
                    .first(c)
                    .await
                    .optional()?;
                let Some(session) = row.map(SessionRow::into_session).transpose()? else {
                    return Ok(Rotation::Inactive);
                };
                if !session.is_active(now) {
                    return Ok(Rotation::Inactive);
                }
                Ok(if generation == session.generation {
                    let next = session.generation + 1;
                    diesel::update(sessions::table.find(id.0))
                        .set((
                            sessions::generation.eq(to_i64(next, "session generation")?),
                            sessions::expires_at.eq(expires_at),
                        ))
                        .execute(c)
                        .await?;
                    Rotation::Rotated {
                        session: Session {
                            generation: next,
                            expires_at,
                            ..session
                        },
                    }
                } else if generation < session.generation {
                    diesel::update(sessions::table.find(id.0))
                        .set(sessions::revoked.eq(true))
                        .execute(c)
                        .await?;
                    Rotation::Reused
                } else {
                    // A generation this session never reached: no token of it
                    // was ever issued, so it proves nothing; nothing changes.
                    Rotation::Inactive
                })
            })
        })
        .await
    }

    async fn revoke(&self, id: SessionId) -> Result<bool, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let revoked = diesel::update(
                    sessions::table
                        .find(id.0)
                        .filter(sessions::revoked.eq(false)),
                )
                .set(sessions::revoked.eq(true))
                .execute(c)
                .await?;
                Ok(revoked == 1)
            })
        })
        .await
    }
}
