//! SQL functions the queries use beyond diesel's own.

use diesel::expression::functions::declare_sql_function;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use crate::schema::sql_types::Tsvector;

/// `tsquery`: a full-text search query.
#[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
#[diesel(postgres_type(name = "tsquery", schema = "pg_catalog"))]
pub struct Tsquery;

/// `regconfig`: a text search configuration. Only ever written as a
/// constant (see [`simple`]), never bound.
#[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
#[diesel(postgres_type(name = "regconfig", schema = "pg_catalog"))]
pub struct Regconfig;

/// The text search configuration of `messages.search` (see `migrations/`):
/// plain words, lower-cased, no stemming and no stop words.
pub(crate) fn simple() -> diesel::expression::SqlLiteral<Regconfig> {
    diesel::dsl::sql::<Regconfig>("'simple'::regconfig")
}

// `vector @@ query`: whether the document matches the query.
diesel::infix_operator!(TsMatches, " @@ ", backend: diesel::pg::Pg);

#[declare_sql_function]
extern "SQL" {
    /// The schema's own case folding (`migrations/`: Unicode lower case by
    /// ICU, whatever the database locale). Every "ignoring case" comparison
    /// goes through it, so the indexes built on it serve the queries.
    fn casefold(t: Text) -> Text;

    /// Where `needle` starts in `haystack`, from 1; 0 when it does not occur.
    fn strpos(haystack: Text, needle: Text) -> Integer;

    /// `x`, or `default` when `x` is NULL.
    #[sql_name = "COALESCE"]
    fn coalesce_i64(x: Nullable<BigInt>, default: BigInt) -> BigInt;

    /// The words of `text`, as `config` parses and normalises them, ANDed
    /// into a query: plain text in, never query syntax.
    fn plainto_tsquery(config: Regconfig, text: Text) -> Tsquery;

    /// How well the document matches the query: higher for more
    /// occurrences of the words and, with several words, for words closer
    /// together. A `real` (`float4`).
    fn ts_rank(vector: Nullable<Tsvector>, query: Tsquery) -> Float;

    /// Whether any of the group's values is true.
    #[aggregate]
    fn bool_or(x: Bool) -> Nullable<Bool>;
}

/// A `LIKE` pattern that matches `prefix` literally, then anything.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_prefix_escapes_the_wildcards() {
        assert_eq!(like_prefix(""), "%");
        assert_eq!(like_prefix("al"), "al%");
        assert_eq!(like_prefix(r"a_b%c\d"), r"a\_b\%c\\d%");
    }
}
