//! Rules for human-readable names and identifiers that clients choose (tenant and token names,
//! run, artifact and key ids, …): no control characters (Unicode `Cc`), no bidirectional
//! controls (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069; the "Trojan Source" set), no
//! invisible or format characters (zero-width space/joiners, U+2060–U+2064, U+FEFF, soft
//! hyphen, U+180E, variation selectors, tag characters), no noncharacters or private-use code
//! points, and a length bound in characters.

/// Why a name is refused (422 `INVALID_NAME`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty after trimming.
    #[error("{field} must not be empty")]
    Empty {
        /// The field as the client named it.
        field: &'static str,
    },
    /// More characters than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Most characters allowed.
        max: usize,
    },
    /// A forbidden character.
    #[error("{field} contains the {class} character U+{code:04X}")]
    Forbidden {
        /// The field.
        field: &'static str,
        /// `control`, `bidi control`, `invisible` or `private-use`.
        class: &'static str,
        /// The code point.
        code: u32,
    },
}

/// The class of a character names must not contain, if any.
pub fn forbidden_class(c: char) -> Option<&'static str> {
    let u = c as u32;
    if c.is_control() {
        return Some("control");
    }
    if matches!(u, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069) {
        return Some("bidi control");
    }
    if matches!(
        u,
        0x00AD
            | 0x034F
            | 0x115F
            | 0x1160
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200D
            | 0x2028
            | 0x2029
            | 0x2060..=0x2064
            | 0x206A..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    ) {
        return Some("invisible");
    }
    if matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF) || (u & 0xFFFE) == 0xFFFE {
        return Some("private-use");
    }
    None
}

/// Checks that `value` has no forbidden character (see the module doc).
///
/// # Errors
/// [`TextError::Forbidden`] naming the first one.
pub fn check_chars(field: &'static str, value: &str) -> Result<(), TextError> {
    match value
        .chars()
        .find_map(|c| forbidden_class(c).map(|k| (k, c)))
    {
        Some((class, c)) => Err(TextError::Forbidden {
            field,
            class,
            code: c as u32,
        }),
        None => Ok(()),
    }
}

/// A display name: trimmed, 1 to `max` characters, no forbidden character. Returns the trimmed
/// name.
///
/// # Errors
/// [`TextError`].
pub fn display_name(field: &'static str, value: &str, max: usize) -> Result<String, TextError> {
    check_chars(field, value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty { field });
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_control_bidi_and_invisible() {
        assert!(display_name("name", "Acme Corp", 200).is_ok());
        assert!(display_name("name", "Ünïcödé 名前", 200).is_ok());
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\u{202E}b",
            "a\u{2066}b",
            "a\u{200B}b",
            "a\u{FEFF}",
            "a\u{E0041}",
            "a\u{E000}",
        ] {
            assert!(
                matches!(
                    display_name("name", bad, 200),
                    Err(TextError::Forbidden { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            display_name("name", "  ", 10),
            Err(TextError::Empty { field: "name" })
        );
        assert!(matches!(
            display_name("name", "abc", 2),
            Err(TextError::TooLong { .. })
        ));
    }
}
