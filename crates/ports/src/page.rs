//! Cursor pagination for every list but message history.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::message::PageLimit;
use uuid::Uuid;

/// Where a page starts: just after the item with this sort key and id. The
/// key's meaning belongs to the listing (a lower-cased username, a timestamp);
/// the client only ever sees the opaque string of [`Cursor::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub id: Uuid,
}

impl Cursor {
    pub fn new(key: impl Into<String>, id: Uuid) -> Self {
        Self {
            key: key.into(),
            id,
        }
    }

    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.id, self.key))
    }

    /// Reads back what [`Cursor::encode`] wrote; `None` for anything else.
    pub fn decode(s: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, key) = text.split_once('\n')?;
        Some(Self {
            key: key.to_owned(),
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: PageLimit,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub fn first(limit: PageLimit) -> Self {
        Self { limit, after: None }
    }

    pub fn limit(&self) -> usize {
        self.limit.get() as usize
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(PageLimit::DEFAULT)
    }
}

/// One page of a list; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items in order: the extra item,
    /// if present, only says that there is a next page.
    pub fn from_overfetch(
        mut items: Vec<T>,
        limit: usize,
        cursor_of: impl Fn(&T) -> Cursor,
    ) -> Self {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(&cursor_of)
        } else {
            None
        };
        Self { items, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_any_key() {
        let c = Cursor::new("a key\nwith newline & ünïcode", Uuid::from_u128(42));
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn garbage_is_no_cursor() {
        assert_eq!(Cursor::decode("not base64 !"), None);
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("no-uuid\nkey")),
            None
        );
        assert_eq!(Cursor::decode(""), None);
    }

    #[test]
    fn overfetch_says_whether_more_follow() {
        let key = |n: &u32| Cursor::new(n.to_string(), Uuid::nil());
        let p = Page::from_overfetch(vec![1, 2, 3], 2, key);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor.map(|c| c.key), Some("2".into()));
        let p = Page::from_overfetch(vec![1, 2], 2, key);
        assert_eq!(p.next_cursor, None);
    }
}
