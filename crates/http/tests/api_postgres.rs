//! The HTTP suite of `api.rs`, module for module, on the PostgreSQL store:
//! each test gets a database of its own (see `chat_store_postgres::testing`).
//! Without a reachable PostgreSQL these tests fail, saying how to get one.

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

/// A fresh store for one test: a database of its own, cloned from the
/// migrated template and dropped with the guard.
async fn fresh_stores() -> (chat_ports::Stores, Box<dyn std::any::Any>) {
    let db = chat_store_postgres::testing::TestDb::create().await;
    let stores = db.store().await.stores();
    (stores, Box::new(db))
}
