//! The HTTP API against the contract of `shared/API.md`: every route of
//! `chat-http`, served in process by the real actix app on the memory store.
//! One test binary for the whole crate (it links faster than many).

#[path = "api/support.rs"]
mod support;

#[path = "api/auth.rs"]
mod auth;
#[path = "api/dms.rs"]
mod dms;
#[path = "api/members.rs"]
mod members;
#[path = "api/messages.rs"]
mod messages;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/rooms.rs"]
mod rooms;
#[path = "api/service.rs"]
mod service;
#[path = "api/users.rs"]
mod users;
