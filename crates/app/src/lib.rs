//! The chat's use cases: register and log in, profiles, rooms, direct
//! messages, membership and moderation, messages, reactions, markers,
//! search and attachments.
//!
//! Every use case follows one shape: load through the ports, let
//! `chat-domain` decide, persist through the ports, then publish the event.
//! This crate knows only `chat-domain` and `chat-ports`: no HTTP, no SQL, no
//! sockets, no async runtime.

mod accounts;
mod attachments;
mod error;
mod live;
mod messages;
mod rooms;
mod users;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chat_domain::rules::Denied;
use chat_domain::{GlobalRole, Role, Room, RoomId, User, UserId};
use chat_ports::{
    BlobStore, Clock, EventBus, IdGen, PasswordHasher, Presence, Stores, TokenIssuer,
};

pub use accounts::{Accounts, AuthContext, NewAccount, Profile, Tokens};
pub use attachments::{Attachments, Upload};
pub use error::{AppError, Taken};
pub use live::{Live, TYPING_EVERY};
pub use messages::{Messages, SendMessage, Sent};
pub use rooms::{CreateRoom, DirectRoom, RoomPatch, Rooms};
pub use users::Users;

/// Everything the use cases are built from.
pub struct Deps {
    pub stores: Stores,
    /// Where attachments' bytes live.
    pub blobs: Arc<dyn BlobStore>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub events: Arc<dyn EventBus>,
    /// Who is online across nodes (`chat_ports::OneNode` for one node).
    pub presence: Arc<dyn Presence>,
    /// Usernames (any case) of the global admins.
    pub admins: Vec<String>,
}

/// Shared by every service.
struct Ctx {
    stores: Stores,
    blobs: Arc<dyn BlobStore>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenIssuer>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    events: Arc<dyn EventBus>,
    presence: Arc<dyn Presence>,
    admins: HashSet<String>,
}

impl Ctx {
    /// A user's standing: a global admin when configuration names them,
    /// whenever they registered.
    fn role_of(&self, user: &User) -> GlobalRole {
        if self.admins.contains(&user.username.key()) {
            GlobalRole::Admin
        } else {
            GlobalRole::User
        }
    }

    /// The room (404 when there is none) and `me`'s role in it, if a member.
    async fn room_and_role(
        &self,
        me: UserId,
        room: RoomId,
    ) -> Result<(Room, Option<Role>), AppError> {
        let room = self
            .stores
            .rooms
            .find(room)
            .await?
            .ok_or(Denied::NotFound)?;
        let role = self
            .stores
            .rooms
            .find_member(room.id, me)
            .await?
            .map(|m| m.role);
        Ok((room, role))
    }
}

/// The application: one service per area, all sharing the same ports.
#[derive(Clone)]
pub struct App {
    pub accounts: Accounts,
    pub users: Users,
    pub rooms: Rooms,
    pub messages: Messages,
    pub attachments: Attachments,
    pub live: Live,
}

impl App {
    pub fn new(deps: Deps) -> Self {
        let ctx = Arc::new(Ctx {
            stores: deps.stores,
            blobs: deps.blobs,
            hasher: deps.hasher,
            tokens: deps.tokens,
            clock: deps.clock,
            ids: deps.ids,
            events: deps.events,
            presence: deps.presence,
            admins: deps
                .admins
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
        });
        Self {
            accounts: Accounts::new(ctx.clone()),
            users: Users::new(ctx.clone()),
            rooms: Rooms::new(ctx.clone()),
            messages: Messages::new(ctx.clone()),
            attachments: Attachments::new(ctx.clone()),
            live: Live::new(ctx),
        }
    }
}

/// How often a change decided on a snapshot is tried again when the room
/// moved on underneath it, before giving up with [`AppError::Busy`].
const ATTEMPTS: usize = 8;

/// Runs `attempt` until it does not fail with a stale precondition.
async fn retry_stale<T, F, Fut>(mut attempt: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    for _ in 1..ATTEMPTS {
        match attempt().await {
            Err(AppError::Store(e)) if e.is_stale() => continue,
            other => return other,
        }
    }
    match attempt().await {
        Err(AppError::Store(e)) if e.is_stale() => Err(AppError::Busy),
        other => other,
    }
}
