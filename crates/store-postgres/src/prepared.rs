//! Hand-written SQL that PostgreSQL parses and plans once per connection.
//!
//! diesel's `sql_query` marks itself unsafe to cache, so every run of it is
//! parsed and planned anew: for the group-commit statements (arrays, joins,
//! subqueries) planning cost more than running. [`Prepared`] is the same
//! idea with a fixed SQL text: the connection's statement cache keys it by
//! that text and its bind types, and reuses the prepared statement.
//!
//! The text numbers its parameters `$1`, `$2`, ... as PostgreSQL does; each
//! `$n` is written out through diesel's own bind machinery, in order.

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// One bind value with its SQL type.
trait Arg: Send + Sync {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Typed<ST, T>(T, PhantomData<fn() -> ST>);

impl<ST, T> Arg for Typed<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg> + Send + Sync,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.0)
    }
}

/// A statement with a fixed text and its binds; `load` it into a
/// `QueryableByName` type or `execute` it.
pub(crate) struct Prepared {
    sql: &'static str,
    args: Vec<Box<dyn Arg>>,
}

impl Prepared {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            args: Vec::new(),
        }
    }

    /// Binds the next parameter (`$1` first).
    pub(crate) fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + Sync + 'static,
        ST: 'static,
    {
        self.args.push(Box::new(Typed::<ST, T>(value, PhantomData)));
        self
    }
}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(dollar) = rest.find('$') {
            out.push_sql(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let n: usize = after[..digits].parse().map_err(|_| {
                diesel::result::Error::QueryBuilderError(
                    format!("a `$` without a parameter number in: {}", self.sql).into(),
                )
            })?;
            let arg = n
                .checked_sub(1)
                .and_then(|i| self.args.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(format!("${n} is not bound").into())
                })?;
            arg.push(&mut out)?;
            rest = &after[digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryId for Prepared {
    // No type of its own: the statement cache keys it by its text.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{BigInt, Text};

    #[test]
    fn parameters_are_written_in_the_order_of_the_text() {
        let q = Prepared::new("SELECT $1::bigint, $2::text, $1::bigint")
            .bind::<BigInt, _>(7_i64)
            .bind::<Text, _>("x".to_owned());
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(
            sql.starts_with("SELECT $1::bigint, $2::text, $3::bigint"),
            "{sql}"
        );
    }

    #[test]
    fn an_unbound_parameter_is_an_error_not_a_panic() {
        use std::fmt::Write as _;
        let unbound = Prepared::new("SELECT $2").bind::<BigInt, _>(1_i64);
        let mut out = String::new();
        assert!(write!(out, "{}", diesel::debug_query::<Pg, _>(&unbound)).is_err());
    }
}
