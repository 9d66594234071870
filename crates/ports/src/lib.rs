//! The ports of the hexagon: every trait the core (`chat-app`) needs from the
//! outside world — repositories, password hashing, tokens, the clock, ids and
//! the event bus — and the error type they share.
//!
//! Ports are used as `Arc<dyn Port>`, so the store is chosen at run time and no
//! generics leak into the handlers. Each trait's doc comments are the contract
//! its adapters must meet; with the `testing` feature, [`contract`] holds that
//! contract as an executable suite which every store runs against itself.
//!
//! This crate must not know about HTTP, SQL or any concrete adapter.

pub mod auth;
pub mod blobs;
pub mod error;
pub mod events;
pub mod page;
pub mod repos;
pub mod room_ops;
pub mod system;

#[cfg(feature = "testing")]
pub mod contract;
#[cfg(feature = "testing")]
pub mod fakes;

pub use auth::{AccessClaims, IssuedToken, PasswordHasher, RefreshClaims, TokenError, TokenIssuer};
pub use blobs::BlobStore;
pub use error::{AppendError, Conflict, SendRefused, StoreError};
pub use events::{
    Audience, Event, EventBus, EventStream, Interest, OneNode, Presence, SharedLimits, Topic,
};
pub use page::{Cursor, Page, PageRequest};
pub use repos::*;
pub use system::{Clock, IdGen, SystemClock, V7Ids};
