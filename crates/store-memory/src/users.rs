//! `UserRepo`.

use std::ops::Bound;

use async_trait::async_trait;
use chat_domain::{Login, Timestamp, User, UserId};
use chat_ports::{
    Conflict, Cursor, NewUser, Page, PageRequest, ProfilePatch, StoreError, UserRepo,
};

use crate::MemoryStore;
use crate::state::UserRow;

#[async_trait]
impl UserRepo for MemoryStore {
    async fn create(&self, new: &NewUser) -> Result<User, StoreError> {
        let mut state = self.lock()?;
        let username_key = new.username.key();
        let email_key = new.email.key();
        if state.username_keys.contains_key(&username_key) {
            return Err(StoreError::Conflict(Conflict::Username));
        }
        if state.email_keys.contains_key(&email_key) {
            return Err(StoreError::Conflict(Conflict::Email));
        }
        if state.users.contains_key(&new.id) {
            return Err(StoreError::Conflict(Conflict::Id));
        }
        let user = User {
            id: new.id,
            username: new.username.clone(),
            email: new.email.clone(),
            display_name: new.display_name.clone(),
            avatar: None,
            created_at: new.created_at,
            last_seen_at: None,
        };
        state.username_keys.insert(username_key, new.id);
        state.email_keys.insert(email_key, new.id);
        state.users.insert(
            new.id,
            UserRow {
                user: user.clone(),
                password_hash: new.password_hash.clone(),
            },
        );
        Ok(user)
    }

    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock()?.users.get(&id).map(|row| row.user.clone()))
    }

    async fn find_credentials(&self, login: &Login) -> Result<Option<(User, String)>, StoreError> {
        let state = self.lock()?;
        let id = match login {
            Login::Username(name) => state.username_keys.get(&name.to_ascii_lowercase()),
            Login::Email(email) => state.email_keys.get(&email.trim().to_lowercase()),
        };
        Ok(id
            .and_then(|id| state.users.get(id))
            .map(|row| (row.user.clone(), row.password_hash.clone())))
    }

    async fn search(&self, prefix: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let state = self.lock()?;
        let prefix = prefix.to_lowercase();
        // Usernames are unique ignoring case, so the lower-cased username
        // alone orders the list; the id only completes the cursor.
        let start = match &page.after {
            Some(c) => Bound::Excluded(c.key.clone()),
            None => Bound::Unbounded,
        };
        let users: Vec<User> = state
            .username_keys
            .range((start, Bound::Unbounded))
            .filter_map(|(key, id)| {
                let row = state.users.get(id)?;
                let matches = key.starts_with(&prefix)
                    || row
                        .user
                        .display_name
                        .as_str()
                        .to_lowercase()
                        .starts_with(&prefix);
                matches.then(|| row.user.clone())
            })
            .take(page.limit() + 1)
            .collect();
        Ok(Page::from_overfetch(users, page.limit(), |u| {
            Cursor::new(u.username.key(), u.id.0)
        }))
    }

    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User, StoreError> {
        let mut state = self.lock()?;
        let state = &mut *state;
        let row = state.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        // PostgreSQL's foreign key: an avatar must be a stored attachment.
        if let Some(Some(avatar)) = patch.avatar
            && !state.attachments.contains_key(&avatar)
        {
            return Err(StoreError::NotFound);
        }
        if let Some(name) = &patch.display_name {
            row.user.display_name = name.clone();
        }
        if let Some(avatar) = patch.avatar
            && avatar != row.user.avatar
        {
            if let Some(old) = row.user.avatar
                && let Some(users) = state.avatars.get_mut(&old)
            {
                users.remove(&id);
                if users.is_empty() {
                    state.avatars.remove(&old);
                }
            }
            if let Some(new) = avatar {
                state.avatars.entry(new).or_default().insert(id);
            }
            row.user.avatar = avatar;
        }
        Ok(row.user.clone())
    }

    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let row = state.users.get_mut(&user).ok_or(StoreError::NotFound)?;
        row.user.last_seen_at = Some(at);
        Ok(())
    }
}
