//! The rules of uploaded files: what name and type they are kept under, which
//! types a browser may show inline, and which message kind carries them.

use crate::MessageKind;

/// The longest filename kept, in bytes (a common file-system limit).
pub const FILENAME_MAX_BYTES: usize = 255;

/// The name an upload is kept and offered under: only its last path
/// component, without control characters, quotes or separators, at most
/// [`FILENAME_MAX_BYTES`] bytes (cut on a character boundary, keeping the
/// extension when it is short), never empty, never `.` or `..`.
pub fn sanitize_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .map(|c| match c {
            c if c.is_control() => '_',
            '"' | '\'' | '<' | '>' | ':' | '|' | '?' | '*' | ';' | '%' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        return "file".to_owned();
    }
    if trimmed.len() <= FILENAME_MAX_BYTES {
        return trimmed.to_owned();
    }
    // Too long: keep a short extension and cut the stem.
    let (stem, ext) = match trimmed.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => (stem, Some(ext)),
        _ => (trimmed, None),
    };
    let room = FILENAME_MAX_BYTES - ext.map_or(0, |e| e.len() + 1);
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    match ext {
        Some(ext) => format!("{}.{ext}", &stem[..cut]),
        None => stem[..cut].to_owned(),
    }
}

/// A declared content type, normalised to its lower-cased `type/subtype`
/// (parameters such as `charset` dropped). `None` when it is not one.
pub fn normalize_content_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(kind) && token(sub)).then_some(essence)
}

/// The content type to assume from a filename's extension when the upload
/// declared none (or only `application/octet-stream`).
pub fn content_type_from_name(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The image types a browser may show inline. SVG is not among them: it can
/// carry script.
const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Whether a download of this (normalised) type is served inline; everything
/// else is served as `Content-Disposition: attachment`.
pub fn served_inline(content_type: &str) -> bool {
    INLINE_IMAGES.contains(&content_type)
        || content_type.starts_with("audio/")
        || content_type.starts_with("video/")
}

/// Whether a file of this type may be an avatar: an image browsers show
/// inline (PNG, JPEG, GIF, WebP).
pub fn fits_avatar(content_type: &str) -> bool {
    INLINE_IMAGES.contains(&content_type)
}

/// Why an upload's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("the file is not a {0} image")]
    NotThatImage(&'static str),
}

/// Checks that the bytes of an inline image type are what the type says, so
/// that nothing else is ever served inline under an image's name. Other
/// types are not checked (they are served as downloads, with `nosniff`).
pub fn check_content(content_type: &str, bytes: &[u8]) -> Result<(), ContentError> {
    let ok = match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        let name = match content_type {
            "image/png" => "PNG",
            "image/jpeg" => "JPEG",
            "image/gif" => "GIF",
            _ => "WebP",
        };
        Err(ContentError::NotThatImage(name))
    }
}

/// The message kind that fits a file of this type.
pub fn kind_for(content_type: &str) -> MessageKind {
    if content_type.starts_with("image/") {
        MessageKind::Image
    } else if content_type.starts_with("video/") {
        MessageKind::Video
    } else if content_type.starts_with("audio/") {
        MessageKind::Audio
    } else {
        MessageKind::File
    }
}

/// Whether a message of `kind` may carry a file of `content_type`: `file`
/// carries anything, `image`/`video`/`audio` only their own types, `text`
/// and `system` nothing.
pub fn kind_fits(kind: MessageKind, content_type: &str) -> bool {
    match kind {
        MessageKind::File => true,
        MessageKind::Image | MessageKind::Video | MessageKind::Audio => {
            kind_for(content_type) == kind
        }
        MessageKind::Text | MessageKind::System => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_dangerous_characters() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(sanitize_filename("a\"b\r\nc.txt"), "a_b__c.txt");
        assert_eq!(sanitize_filename(""), "file");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(".hidden"), "hidden");
        assert_eq!(sanitize_filename("  ünïcode ✓.pdf "), "ünïcode ✓.pdf");
    }

    #[test]
    fn long_filenames_keep_their_extension() {
        let long = format!("{}.jpeg", "é".repeat(300));
        let kept = sanitize_filename(&long);
        assert!(kept.len() <= FILENAME_MAX_BYTES);
        assert!(kept.ends_with(".jpeg"));
        assert!(sanitize_filename(&"x".repeat(1000)).len() == FILENAME_MAX_BYTES);
    }

    #[test]
    fn content_types_are_normalised() {
        assert_eq!(
            normalize_content_type("Image/PNG; charset=binary").as_deref(),
            Some("image/png")
        );
        assert_eq!(normalize_content_type("nonsense"), None);
        assert_eq!(normalize_content_type("text/<script>"), None);
        assert_eq!(content_type_from_name("a.JPG"), "image/jpeg");
        assert_eq!(content_type_from_name("noext"), "application/octet-stream");
    }

    #[test]
    fn only_safe_types_are_inline() {
        assert!(served_inline("image/png"));
        assert!(served_inline("video/mp4"));
        assert!(served_inline("audio/ogg"));
        assert!(!served_inline("image/svg+xml"));
        assert!(!served_inline("text/html"));
        assert!(!served_inline("application/pdf"));
    }

    #[test]
    fn avatars_are_inline_images() {
        assert!(fits_avatar("image/webp"));
        assert!(!fits_avatar("image/svg+xml"));
        assert!(!fits_avatar("video/mp4"));
    }

    #[test]
    fn images_must_be_what_they_say() {
        assert!(check_content("image/png", b"\x89PNG\r\n\x1a\nrest").is_ok());
        assert!(check_content("image/png", b"<html>").is_err());
        assert!(check_content("image/gif", b"GIF89a...").is_ok());
        assert!(check_content("image/webp", b"RIFF\0\0\0\0WEBPVP8 ").is_ok());
        assert!(check_content("image/jpeg", b"GIF89a").is_err());
        assert!(check_content("application/pdf", b"anything").is_ok());
    }

    #[test]
    fn kinds_fit_types() {
        assert!(kind_fits(MessageKind::Image, "image/png"));
        assert!(!kind_fits(MessageKind::Image, "application/pdf"));
        assert!(kind_fits(MessageKind::File, "image/png"));
        assert!(!kind_fits(MessageKind::Text, "image/png"));
        assert_eq!(kind_for("audio/ogg"), MessageKind::Audio);
    }
}
