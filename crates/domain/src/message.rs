//! Messages, history queries and read markers.

use crate::text::{self, LengthError};
use crate::{AttachmentId, MessageId, RoomId, Timestamp, UserId, Username};

/// What a message is. `System` messages are written by the server (moderation
/// steps) and cannot be sent by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Text,
    Image,
    Video,
    Audio,
    File,
    System,
}

impl MessageKind {
    /// Kinds that must carry an attachment.
    pub fn needs_attachment(self) -> bool {
        matches!(self, Self::Image | Self::Video | Self::Audio | Self::File)
    }
}

/// Message text: 1–4000 characters after trimming (0 allowed when the message
/// carries an attachment), no NUL. Kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub const MAX: usize = 4000;

    pub fn parse(s: &str, has_attachment: bool) -> Result<Self, LengthError> {
        let min = usize::from(!has_attachment);
        text::bounded(s, min, Self::MAX).map(|t| Self(t.to_owned()))
    }

    /// Text written by the server itself (system messages).
    pub fn system(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A client's idempotency key for a send: any string of at most 64 characters
/// (no NUL). The same sender, room and key give back the first message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, LengthError> {
        if text::has_nul(s) {
            return Err(LengthError::Nul);
        }
        if text::char_len(s) > Self::MAX {
            return Err(LengthError::Length {
                min: 0,
                max: Self::MAX,
            });
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reaction: 1–64 bytes with no whitespace (a glyph or a `:short_name:`),
/// and no control character. Compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(String);

/// Why an emoji was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmojiError {
    #[error("must be 1-64 bytes of valid UTF-8 with no whitespace")]
    Invalid,
}

impl Emoji {
    pub const MAX_BYTES: usize = 64;

    pub fn parse(s: &str) -> Result<Self, EmojiError> {
        // U+FFFD is what bytes that were not UTF-8 decode to (`%FF` in a
        // path): never a reaction anyone chose.
        let ok = (1..=Self::MAX_BYTES).contains(&s.len())
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == char::REPLACEMENT_CHARACTER);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(EmojiError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The words of a search query: split on everything that is not a letter or
/// a digit, lower-cased, duplicates dropped, at most [`SEARCH_MAX_WORDS`].
/// Empty when the query holds no word.
pub fn search_words(q: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = w.to_lowercase();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    words.truncate(SEARCH_MAX_WORDS);
    words
}

/// The most words a search uses; the rest of a longer query is ignored.
pub const SEARCH_MAX_WORDS: usize = 16;

/// The little a message says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderInfo {
    pub id: UserId,
    pub username: Username,
    pub display_name: String,
}

/// One emoji's reactions on a message, as one viewer sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionSummary {
    pub emoji: String,
    pub count: u32,
    /// Whether the viewer is among those who reacted.
    pub me: bool,
}

/// An uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub uploader: UserId,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: Timestamp,
}

/// A message as stored (and as one viewer sees its reactions).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Per room: starts at 1, gapless, strictly increasing in commit order.
    pub seq: u64,
    pub sender: SenderInfo,
    pub kind: MessageKind,
    /// Empty once deleted.
    pub content: String,
    pub attachment: Option<Attachment>,
    pub reply_to_id: Option<MessageId>,
    pub reactions: Vec<ReactionSummary>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    /// The room version of this message's latest change (its send, edit,
    /// delete or reaction).
    pub version: u64,
}

/// A page size: 1–100, default 50 (message history and every other list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: Self = Self(50);
    pub const MAX: u32 = 100;

    pub fn new(n: i64) -> Option<Self> {
        (1..=i64::from(Self::MAX))
            .contains(&n)
            .then(|| Self(u32::try_from(n).unwrap_or(Self::MAX)))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Which slice of a room's history to read; the answer is always in ascending seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The newest `limit` messages.
    Latest(PageLimit),
    /// The `limit` messages just before this seq.
    Before(u64, PageLimit),
    /// The `limit` messages just after this seq (catch-up).
    After(u64, PageLimit),
}

impl HistoryQuery {
    pub fn limit(self) -> PageLimit {
        match self {
            Self::Latest(l) | Self::Before(_, l) | Self::After(_, l) => l,
        }
    }
}

/// Read and delivered markers: a seq that only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("is past the room's last message")]
    PastEnd,
}

/// The rules of a marker.
pub struct ReadMarker;

impl ReadMarker {
    /// Where a marker at `current` goes when asked to move to `requested` in a
    /// room whose newest message is `last_seq`: `Ok(Some(seq))` to move,
    /// `Ok(None)` when it would move back or stay (accepted and ignored), and an
    /// error past the end.
    pub fn advance(
        current: u64,
        requested: u64,
        last_seq: u64,
    ) -> Result<Option<u64>, MarkerError> {
        if requested > last_seq {
            return Err(MarkerError::PastEnd);
        }
        Ok((requested > current).then_some(requested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_is_trimmed_and_bounded() {
        assert_eq!(
            MessageContent::parse("  hi ", false).unwrap().as_str(),
            "hi"
        );
        assert!(MessageContent::parse("   ", false).is_err());
        assert!(MessageContent::parse("", true).is_ok());
        assert!(MessageContent::parse(&"é".repeat(4000), false).is_ok());
        assert!(MessageContent::parse(&"é".repeat(4001), false).is_err());
        assert_eq!(MessageContent::parse("a\0b", false), Err(LengthError::Nul));
        for blank in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF}", " \u{2060} "] {
            assert_eq!(
                MessageContent::parse(blank, false),
                Err(LengthError::Invisible),
                "{blank:?}"
            );
        }
        // With an attachment the text may be empty, invisible or not.
        assert!(MessageContent::parse("\u{200B}", true).is_ok());
        // Zero-width characters inside visible text are text.
        assert!(MessageContent::parse("a\u{200D}b", false).is_ok());
        assert!(crate::RoomName::parse("\u{200B}").is_err());
        assert!(crate::DisplayName::parse("\u{FEFF}").is_err());
    }

    #[test]
    fn client_msg_id_up_to_64() {
        assert!(ClientMsgId::parse(&"k".repeat(64)).is_ok());
        assert!(ClientMsgId::parse(&"k".repeat(65)).is_err());
        assert!(ClientMsgId::parse("a\0").is_err());
    }

    #[test]
    fn history_limit_bounds() {
        assert!(PageLimit::new(0).is_none());
        assert_eq!(PageLimit::new(1).map(PageLimit::get), Some(1));
        assert_eq!(PageLimit::new(100).map(PageLimit::get), Some(100));
        assert!(PageLimit::new(101).is_none());
        assert!(PageLimit::new(-5).is_none());
    }

    #[test]
    fn marker_moves_forward_only() {
        assert_eq!(ReadMarker::advance(0, 3, 5), Ok(Some(3)));
        assert_eq!(ReadMarker::advance(3, 3, 5), Ok(None));
        assert_eq!(
            ReadMarker::advance(4, 2, 5),
            Ok(None),
            "moving back is ignored"
        );
        assert_eq!(ReadMarker::advance(0, 6, 5), Err(MarkerError::PastEnd));
        assert_eq!(ReadMarker::advance(0, 0, 0), Ok(None));
    }

    #[test]
    fn emoji_rules() {
        assert!(Emoji::parse("👍").is_ok());
        assert!(Emoji::parse(":thumbs_up:").is_ok());
        assert!(Emoji::parse("👨‍👩‍👧‍👦").is_ok(), "ZWJ sequences are one glyph");
        assert!(Emoji::parse("").is_err());
        assert!(Emoji::parse("a b").is_err());
        assert!(
            Emoji::parse("x\u{3000}").is_err(),
            "ideographic space is whitespace"
        );
        assert!(Emoji::parse("a\0").is_err());
        assert!(
            Emoji::parse("\u{FFFD}").is_err(),
            "what undecodable bytes turn into"
        );
        assert!(Emoji::parse(&"x".repeat(64)).is_ok());
        assert!(Emoji::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn search_words_split_and_fold() {
        assert_eq!(search_words("Hello, WORLD! hello"), vec!["hello", "world"]);
        assert!(search_words("  ,;! ").is_empty());
        assert_eq!(search_words("naïve café"), vec!["naïve", "café"]);
    }

    #[test]
    fn attachment_kinds() {
        assert!(MessageKind::Image.needs_attachment());
        assert!(!MessageKind::Text.needs_attachment());
        assert!(!MessageKind::System.needs_attachment());
    }

    proptest! {
        /// Whatever sequence of requests arrives, the marker never decreases and
        /// never passes the end.
        #[test]
        fn marker_never_moves_back(last in 0u64..1000, reqs in proptest::collection::vec(0u64..1200, 0..50)) {
            let mut marker = 0u64;
            for r in reqs {
                let before = marker;
                match ReadMarker::advance(marker, r, last) {
                    Ok(Some(m)) => marker = m,
                    Ok(None) => {}
                    Err(MarkerError::PastEnd) => prop_assert!(r > last),
                }
                prop_assert!(marker >= before);
                prop_assert!(marker <= last);
            }
        }
    }
}
