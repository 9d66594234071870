//! Small text helpers shared by the value objects.

/// Length in Unicode scalar values, the unit the contract counts lengths in.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// True when the text holds a character that the stores cannot keep as given.
/// PostgreSQL refuses NUL in text, so the domain refuses it everywhere.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// True for the characters that take no room on screen and are not
/// whitespace (so `trim` keeps them): zero-width space and joiners, word
/// joiner, the byte-order mark, soft hyphen, invisible operators,
/// variation selectors.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// Checks a free-text field: trimmed length within `min..=max`, no NUL,
/// and when it may not be empty, something visible (not only zero-width
/// characters). Returns the trimmed text.
pub fn bounded(s: &str, min: usize, max: usize) -> Result<&str, LengthError> {
    if has_nul(s) {
        return Err(LengthError::Nul);
    }
    let trimmed = s.trim();
    let len = char_len(trimmed);
    if len < min || len > max {
        return Err(LengthError::Length { min, max });
    }
    if min > 0 && trimmed.chars().all(|c| invisible(c) || c.is_whitespace()) {
        return Err(LengthError::Invisible);
    }
    Ok(trimmed)
}

/// Why a free-text field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LengthError {
    #[error("must be {min}-{max} characters")]
    Length { min: usize, max: usize },
    #[error("must not contain a NUL character")]
    Nul,
    #[error("must contain a visible character, not only zero-width ones")]
    Invisible,
}
