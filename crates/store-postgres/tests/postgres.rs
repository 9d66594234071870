//! The PostgreSQL store's tests, in one binary: the ports' whole contract
//! suite, the migrations (up, down, up again), `schema.rs` against the
//! migrated database, and what only PostgreSQL can show (error mapping,
//! timeouts, several pools on one room, a server killed under load).
//!
//! Every test gets a database of its own, cloned from a migrated template
//! (see `chat_store_postgres::testing`), so the tests run side by side. Without a
//! reachable server they fail, saying how to get one; they never skip. The
//! crash test alone runs a server of its own, which it may kill.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step should fail the test loudly"
)]

#[path = "postgres/adapter.rs"]
mod adapter;
#[path = "postgres/batch.rs"]
mod batch;
#[path = "postgres/crash.rs"]
mod crash;
#[path = "postgres/migrations.rs"]
mod migrations;
#[path = "postgres/schema_drift.rs"]
mod schema_drift;

use chat_store_postgres::testing::TestDb;

chat_ports::contract_tests!(async {
    let db = TestDb::create().await;
    let stores = db.store().await.stores();
    // The stores go first, then the guard drops the database.
    (stores, db)
});
