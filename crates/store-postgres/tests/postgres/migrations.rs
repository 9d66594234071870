//! Every migration goes up, comes down without a trace, and goes up again.

use chat_store_postgres::{MIGRATIONS, PgConfig, PgStore};
use diesel::QueryableByName;
use diesel::migration::MigrationSource;
use diesel::sql_types::Text;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;

use chat_store_postgres::testing::TestDb;

#[derive(QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    #[diesel(sql_type = Text)]
    item: String,
}

/// Everything of ours in the database's `public` schema: relations (tables,
/// indexes, sequences), columns, constraints, functions and types. diesel's
/// own bookkeeping table is left out.
async fn catalogue(conn: &mut AsyncPgConnection) -> Vec<String> {
    let mut items: Vec<Item> = diesel::sql_query(
        "SELECT 'relation ' || c.relname || ' ' || c.relkind::text AS item
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relname NOT LIKE '\\_\\_diesel%'
         UNION ALL
         SELECT 'column ' || table_name || '.' || column_name || ' ' || udt_name
                || ' ' || is_nullable || ' ' || coalesce(column_default, '')
                || ' ' || coalesce(generation_expression, '')
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name NOT LIKE '\\_\\_diesel%'
         UNION ALL
         SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
                || pg_get_constraintdef(c.oid)
           FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
          WHERE n.nspname = 'public' AND conrelid::regclass::text NOT LIKE '\\_\\_diesel%'
         UNION ALL
         SELECT 'index ' || indexname || ' ' || indexdef
           FROM pg_indexes
          WHERE schemaname = 'public' AND tablename NOT LIKE '\\_\\_diesel%'
         UNION ALL
         SELECT 'function ' || p.oid::regprocedure
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'public'
         UNION ALL
         SELECT 'type ' || t.typname
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = 'public' AND t.typname NOT LIKE '%\\_\\_diesel%'",
    )
    .load(conn)
    .await
    .expect("read the catalogue");
    items.sort();
    items.into_iter().map(|i| i.item).collect()
}

/// Reverts every applied migration, newest first.
async fn revert_all(conn: AsyncPgConnection) -> (AsyncPgConnection, usize) {
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        let reverted = conn.revert_all_migrations(MIGRATIONS).expect("revert");
        let n = reverted.len();
        (conn.into_inner(), n)
    })
    .await
    .expect("the revert task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_migration_goes_up_down_and_up_again() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    let before = catalogue(&mut conn).await;
    assert_eq!(
        before,
        Vec::<String>::new(),
        "a new database has nothing of ours"
    );
    let count = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .expect("the embedded migrations")
        .len();
    assert!(count >= 3);

    let store = PgStore::connect(&PgConfig {
        run_migrations: false,
        ..PgConfig::new(db.url())
    })
    .await
    .unwrap();
    assert_eq!(store.migrate().await.unwrap().len(), count, "all up");
    assert_eq!(
        store.migrate().await.unwrap(),
        Vec::<String>::new(),
        "nothing left to do"
    );
    let migrated = catalogue(&mut conn).await;
    assert!(
        migrated.iter().any(|i| i == "relation messages r"),
        "{migrated:#?}"
    );

    let (mut conn, reverted) = revert_all(conn).await;
    assert_eq!(reverted, count, "all down");
    assert_eq!(
        catalogue(&mut conn).await,
        before,
        "down.sql leaves nothing behind"
    );

    assert_eq!(store.migrate().await.unwrap().len(), count, "all up again");
    assert_eq!(
        catalogue(&mut conn).await,
        migrated,
        "the same schema the second time"
    );
    drop(store);
}

/// `connect` migrates when asked to, and the store works straight away;
/// also on a current-thread runtime (actix-web's main), whose thread drives
/// the connection while the harness blocks another.
#[tokio::test]
async fn connect_runs_the_migrations() {
    let db = TestDb::empty().await;
    let store = PgStore::connect(&PgConfig::new(db.url())).await.unwrap();
    assert!(store.ping().await);
    let mut conn = db.connect().await;
    let tables = catalogue(&mut conn).await;
    for table in [
        "users",
        "sessions",
        "blocks",
        "rooms",
        "memberships",
        "messages",
    ] {
        assert!(
            tables.contains(&format!("relation {table} r")),
            "{table} missing from {tables:#?}"
        );
    }
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
}
