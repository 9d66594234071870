//! `BlockRepo`.

use std::ops::Bound;

use async_trait::async_trait;
use chat_domain::{Timestamp, User, UserId};
use chat_ports::{BlockRepo, Page, PageRequest, StoreError};

use crate::MemoryStore;
use crate::state::{require_user, time_cursor, time_position};

#[async_trait]
impl BlockRepo for MemoryStore {
    async fn block(
        &self,
        blocker: UserId,
        blocked: UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        require_user(&state.users, blocker)?;
        require_user(&state.users, blocked)?;
        let list = state.blocks.entry(blocker).or_default();
        if list.by_user.contains_key(&blocked) {
            return Ok(false);
        }
        list.by_user.insert(blocked, at);
        list.order.insert((at, blocked));
        Ok(true)
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let Some(list) = state.blocks.get_mut(&blocker) else {
            return Ok(false);
        };
        let Some(at) = list.by_user.remove(&blocked) else {
            return Ok(false);
        };
        list.order.remove(&(at, blocked));
        if list.by_user.is_empty() {
            state.blocks.remove(&blocker);
        }
        Ok(true)
    }

    async fn either_blocks(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        let state = self.lock()?;
        let blocks = |x: UserId, y: UserId| {
            state
                .blocks
                .get(&x)
                .is_some_and(|list| list.by_user.contains_key(&y))
        };
        Ok(blocks(a, b) || blocks(b, a))
    }

    async fn list(&self, blocker: UserId, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let state = self.lock()?;
        let after = time_position::<UserId>(page.after.as_ref())?;
        let Some(list) = state.blocks.get(&blocker) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let upper = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows = Vec::with_capacity(page.limit() + 1);
        for (at, id) in list
            .order
            .range((Bound::Unbounded, upper))
            .rev()
            .take(page.limit() + 1)
        {
            let user = require_user(&state.users, *id)
                .map_err(|_| StoreError::other("a blocked user is missing"))?;
            rows.push((*at, user.user.clone()));
        }
        Ok(
            Page::from_overfetch(rows, page.limit(), |(at, u)| time_cursor(*at, u.id.0))
                .map(|(_, u)| u),
        )
    }
}
