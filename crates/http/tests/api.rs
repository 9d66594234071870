//! The HTTP API against the contract of `shared/API.md`: every route of
//! `chat-http`, served in process by the real actix app on the memory store.
//! `api_postgres.rs` runs the very same modules on PostgreSQL.

#[path = "api/support.rs"]
mod support;

#[path = "api/attachments.rs"]
mod attachments;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/changes.rs"]
mod changes;
#[path = "api/dms.rs"]
mod dms;
#[path = "api/edits.rs"]
mod edits;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/members.rs"]
mod members;
#[path = "api/messages.rs"]
mod messages;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/reactions.rs"]
mod reactions;
#[path = "api/receipts.rs"]
mod receipts;
#[path = "api/rooms.rs"]
mod rooms;
#[path = "api/search.rs"]
mod search;
#[path = "api/service.rs"]
mod service;
#[path = "api/users.rs"]
mod users;

/// A fresh, empty store for one test.
async fn fresh_stores() -> (chat_ports::Stores, Box<dyn std::any::Any>) {
    (chat_store_memory::MemoryStore::new_stores(), Box::new(()))
}
