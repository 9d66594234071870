//! SQL functions the queries use beyond diesel's own.

use diesel::expression::functions::declare_sql_function;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

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
