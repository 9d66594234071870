//! `SessionRepo`.

use async_trait::async_trait;
use chat_domain::{SessionId, Timestamp};
use chat_ports::{Conflict, Rotation, Session, SessionRepo, StoreError};

use crate::MemoryStore;
use crate::state::require_user;

#[async_trait]
impl SessionRepo for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        require_user(&state.users, session.user_id)?;
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict(Conflict::Id));
        }
        state.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.lock()?.sessions.get(&id).cloned())
    }

    async fn rotate(
        &self,
        id: SessionId,
        generation: u64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Rotation, StoreError> {
        let mut state = self.lock()?;
        let Some(session) = state.sessions.get_mut(&id) else {
            return Ok(Rotation::Inactive);
        };
        if !session.is_active(now) {
            return Ok(Rotation::Inactive);
        }
        Ok(if generation == session.generation {
            session.generation += 1;
            session.expires_at = expires_at;
            Rotation::Rotated {
                session: session.clone(),
            }
        } else if generation < session.generation {
            session.revoked = true;
            Rotation::Reused
        } else {
            // A generation this session never reached: no token of it was
            // ever issued, so it proves nothing; the session stays as it is.
            Rotation::Inactive
        })
    }

    async fn revoke(&self, id: SessionId) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        Ok(match state.sessions.get_mut(&id) {
            Some(session) if !session.revoked => {
                session.revoked = true;
                true
            }
            _ => false,
        })
    }
}
