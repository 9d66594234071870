//! End to end: the real server, bound to a free port, driven over HTTP and
//! WebSocket by real client libraries (reqwest, tokio-tungstenite), on the
//! in-memory store and on PostgreSQL. Every scenario runs on both.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step should fail the test loudly"
)]

#[path = "e2e/support.rs"]
mod support;

#[path = "e2e/multinode.rs"]
mod multinode;
#[path = "e2e/ops.rs"]
mod ops;
#[path = "e2e/realtime.rs"]
mod realtime;
#[path = "e2e/uploads.rs"]
mod uploads;
