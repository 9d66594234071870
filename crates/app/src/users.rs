//! Profiles, user search and blocking.

use std::sync::Arc;

use chat_domain::attachment::fits_avatar;
use chat_domain::{Timestamp, User, UserId};
use chat_ports::{Page, PageRequest, ProfilePatch, StoreError};

use crate::{AppError, Ctx, Profile};

#[derive(Clone)]
pub struct Users {
    ctx: Arc<Ctx>,
}

impl Users {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// The caller's own account.
    pub async fn me(&self, me: UserId) -> Result<Profile, AppError> {
        let user = self.find(me).await?;
        Ok(Profile {
            role: self.ctx.role_of(&user),
            user,
        })
    }

    /// Changes the caller's profile. An avatar must be an image the caller
    /// uploaded, of a type browsers show inline.
    pub async fn update_me(&self, me: UserId, patch: &ProfilePatch) -> Result<Profile, AppError> {
        if let Some(Some(id)) = patch.avatar {
            match self.ctx.stores.attachments.find(id).await? {
                Some(a) if a.uploader == me => {
                    if !fits_avatar(&a.content_type) {
                        return Err(AppError::invalid(
                            "avatar_attachment_id",
                            "must be a PNG, JPEG, GIF or WebP image",
                        ));
                    }
                }
                _ => {
                    return Err(AppError::invalid(
                        "avatar_attachment_id",
                        "no such attachment",
                    ));
                }
            }
        }
        let user = self
            .ctx
            .stores
            .users
            .update_profile(me, patch)
            .await
            .map_err(not_found)?;
        Ok(Profile {
            role: self.ctx.role_of(&user),
            user,
        })
    }

    /// Users whose username or display name starts with `prefix`, ignoring case.
    pub async fn search(&self, prefix: &str, page: &PageRequest) -> Result<Page<User>, AppError> {
        Ok(self.ctx.stores.users.search(prefix.trim(), page).await?)
    }

    /// Any user, by id.
    pub async fn get(&self, id: UserId) -> Result<User, AppError> {
        self.find(id).await
    }

    /// The caller blocks `target`: from now on neither can open or write in
    /// a direct room with the other. Blocking twice changes nothing.
    pub async fn block(&self, me: UserId, target: UserId) -> Result<(), AppError> {
        if me == target {
            return Err(AppError::invalid("id", "you cannot block yourself"));
        }
        self.find(target).await?;
        let now = self.ctx.clock.now();
        self.ctx.stores.blocks.block(me, target, now).await?;
        Ok(())
    }

    /// Lifts the caller's block on `target`; no error if there was none.
    pub async fn unblock(&self, me: UserId, target: UserId) -> Result<(), AppError> {
        self.find(target).await?;
        self.ctx.stores.blocks.unblock(me, target).await?;
        Ok(())
    }

    /// The users the caller blocks, most recent first.
    pub async fn blocks(&self, me: UserId, page: &PageRequest) -> Result<Page<User>, AppError> {
        Ok(self.ctx.stores.blocks.list(me, page).await?)
    }

    /// Records when the caller was last seen (their last connection closed).
    pub async fn set_last_seen(&self, me: UserId, at: Timestamp) -> Result<(), AppError> {
        self.ctx
            .stores
            .users
            .set_last_seen(me, at)
            .await
            .map_err(not_found)
    }

    async fn find(&self, id: UserId) -> Result<User, AppError> {
        self.ctx
            .stores
            .users
            .find(id)
            .await?
            .ok_or(AppError::NotFound)
    }
}

fn not_found(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::NotFound,
        other => other.into(),
    }
}
