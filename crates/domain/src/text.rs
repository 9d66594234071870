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

/// Checks a free-text field: trimmed length within `min..=max`, no NUL.
/// Returns the trimmed text.
pub fn bounded(s: &str, min: usize, max: usize) -> Result<&str, LengthError> {
    if has_nul(s) {
        return Err(LengthError::Nul);
    }
    let trimmed = s.trim();
    let len = char_len(trimmed);
    if len < min || len > max {
        return Err(LengthError::Length { min, max });
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
}
