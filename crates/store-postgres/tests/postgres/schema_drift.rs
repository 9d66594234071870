//! `src/schema.rs` says what `diesel print-schema` says of the migrated
//! database: the same tables, columns (in order, with their types and
//! nullability), primary keys, `joinable!`s and table list. Change a
//! migration without regenerating `schema.rs` (or the other way round) and
//! this fails, naming the difference.

use std::collections::{BTreeMap, BTreeSet};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use chat_store_postgres::testing::TestDb;

const SCHEMA_RS: &str = include_str!("../../src/schema.rs");

/// A table as `table!` declares it, or as the database has it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    primary_key: Vec<String>,
    /// `(name, diesel type, nullable)`, in column order.
    columns: Vec<(String, String, bool)>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Table>,
    /// `(child, parent, column)` of each `joinable!`.
    joinables: BTreeSet<(String, String, String)>,
    /// The tables of `allow_tables_to_appear_in_same_query!`.
    same_query: BTreeSet<String>,
}

/// Reads `schema.rs` as print-schema writes it.
fn declared() -> Schema {
    let mut schema = Schema::default();
    let mut table: Option<String> = None;
    let mut in_same_query = false;
    for line in SCHEMA_RS.lines().map(str::trim) {
        if let Some(name) = &table {
            if line == "}" {
                table = None;
            } else if let Some((column, ty)) =
                line.strip_suffix(',').and_then(|l| l.split_once(" -> "))
            {
                let (ty, nullable) = match ty
                    .strip_prefix("Nullable<")
                    .and_then(|t| t.strip_suffix('>'))
                {
                    Some(inner) => (inner, true),
                    None => (ty, false),
                };
                schema.tables.get_mut(name).unwrap().columns.push((
                    column.to_owned(),
                    ty.to_owned(),
                    nullable,
                ));
            }
            continue;
        }
        if in_same_query {
            if line == ");" {
                in_same_query = false;
            } else {
                schema
                    .same_query
                    .insert(line.trim_end_matches(',').to_owned());
            }
            continue;
        }
        if line == "diesel::allow_tables_to_appear_in_same_query!(" {
            in_same_query = true;
        } else if let Some(rest) = line.strip_prefix("diesel::joinable!(") {
            // `child -> parent (column));`
            let rest = rest.trim_end_matches(");");
            let (child, rest) = rest.split_once(" -> ").unwrap();
            let (parent, column) = rest.split_once(" (").unwrap();
            schema.joinables.insert((
                child.to_owned(),
                parent.to_owned(),
                column.trim_end_matches(')').to_owned(),
            ));
        } else if let Some(head) = line.strip_suffix(" {")
            && let Some((name, key)) = head.split_once(" (")
            && !name.contains(' ')
            && !name.contains(':')
        {
            let key = key.trim_end_matches(')');
            let primary_key = key.split(',').map(|k| k.trim().to_owned()).collect();
            schema.tables.insert(
                name.to_owned(),
                Table {
                    primary_key,
                    columns: Vec::new(),
                },
            );
            table = Some(name.to_owned());
        }
    }
    schema
}

/// The diesel type print-schema writes for a PostgreSQL type.
fn diesel_type(udt: &str) -> &'static str {
    match udt {
        "uuid" => "Uuid",
        "text" => "Text",
        "varchar" => "Varchar",
        "int2" => "Int2",
        "int4" => "Int4",
        "int8" => "Int8",
        "bool" => "Bool",
        "timestamptz" => "Timestamptz",
        "timestamp" => "Timestamp",
        "date" => "Date",
        "bytea" => "Bytea",
        "jsonb" => "Jsonb",
        "tsvector" => "Tsvector",
        other => panic!("no diesel type known for `{other}`: extend `diesel_type`"),
    }
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = BigInt)]
    columns: i64,
    #[diesel(sql_type = Text)]
    child_column: String,
    #[diesel(sql_type = Text)]
    parent_column: String,
}

/// What print-schema would write for the migrated database.
async fn migrated() -> Schema {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let columns: Vec<ColumnRow> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, udt_name::text, is_nullable::text
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
          ORDER BY table_name, ordinal_position",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let keys: Vec<KeyRow> = diesel::sql_query(
        "SELECT tc.table_name::text, kcu.column_name::text
           FROM information_schema.table_constraints tc
           JOIN information_schema.key_column_usage kcu
             ON kcu.constraint_schema = tc.constraint_schema
            AND kcu.constraint_name = tc.constraint_name
          WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'
            AND tc.table_name <> '__diesel_schema_migrations'
          ORDER BY tc.table_name, kcu.ordinal_position",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let foreign_keys: Vec<ForeignKeyRow> = diesel::sql_query(
        "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent,
                cardinality(conkey)::int8 AS columns,
                (SELECT attname FROM pg_attribute
                  WHERE attrelid = conrelid AND attnum = conkey[1])::text AS child_column,
                (SELECT attname FROM pg_attribute
                  WHERE attrelid = confrelid AND attnum = confkey[1])::text AS parent_column
           FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
          WHERE c.contype = 'f' AND n.nspname = 'public'",
    )
    .load(&mut conn)
    .await
    .unwrap();

    let mut schema = Schema::default();
    for c in columns {
        schema
            .tables
            .entry(c.table_name)
            .or_default()
            .columns
            .push((
                c.column_name,
                diesel_type(&c.udt_name).to_owned(),
                c.is_nullable == "YES",
            ));
    }
    for k in keys {
        schema
            .tables
            .get_mut(&k.table_name)
            .unwrap()
            .primary_key
            .push(k.column_name);
    }
    schema.same_query = schema.tables.keys().cloned().collect();
    // print-schema's rule: one-column keys onto the parent's one-column
    // primary key, not self-referential, and only between two tables joined
    // by no other foreign key (in either direction).
    let pair = |fk: &ForeignKeyRow| {
        let mut p = [fk.child.clone(), fk.parent.clone()];
        p.sort();
        p
    };
    for fk in &foreign_keys {
        let parent_key = &schema.tables[&fk.parent].primary_key;
        let unique_pair = foreign_keys.iter().filter(|o| pair(o) == pair(fk)).count() == 1;
        if fk.child != fk.parent
            && fk.columns == 1
            && parent_key.as_slice() == [fk.parent_column.clone()]
            && unique_pair
        {
            schema
                .joinables
                .insert((fk.child.clone(), fk.parent.clone(), fk.child_column.clone()));
        }
    }
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_the_migrated_database() {
    let declared = declared();
    let migrated = migrated().await;
    assert!(declared.tables.len() >= 11, "parsed {declared:#?}");
    let names = |s: &Schema| s.tables.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&declared),
        names(&migrated),
        "tables (regenerate schema.rs)"
    );
    for (name, table) in &migrated.tables {
        assert_eq!(
            &declared.tables[name], table,
            "table `{name}` in schema.rs differs from the migrated database \
             (left: schema.rs, right: database)"
        );
    }
    assert_eq!(declared.joinables, migrated.joinables, "joinable!s");
    assert_eq!(
        declared.same_query, migrated.same_query,
        "allow_tables_to_appear_in_same_query!"
    );
}

/// The parser itself: it finds every table and column print-schema writes.
#[test]
fn the_parser_reads_schema_rs() {
    let schema = declared();
    let messages = &schema.tables["messages"];
    assert_eq!(messages.primary_key, vec!["id"]);
    assert!(
        messages
            .columns
            .contains(&("search".into(), "Tsvector".into(), true))
    );
    assert!(
        messages
            .columns
            .contains(&("seq".into(), "Int8".into(), false))
    );
    assert_eq!(
        schema.tables["blocks"].primary_key,
        vec!["blocker_id", "blocked_id"]
    );
    assert!(
        schema
            .joinables
            .contains(&("messages".into(), "rooms".into(), "room_id".into()))
    );
    assert!(schema.same_query.contains("users"));
}
