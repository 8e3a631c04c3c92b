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
    /// White space at the start or the end (a name is stored as sent, so it is refused rather
    /// than silently trimmed).
    #[error("{field} must not start or end with white space")]
    Padded {
        /// The field.
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

/// The code points names must not contain, as inclusive ranges with their class (see the
/// module doc). One table serves the check ([`forbidden_class`]) and the pattern the OpenAPI
/// document publishes ([`name_pattern`]).
const FORBIDDEN: &[(u32, u32, &str)] = &[
    (0x0000, 0x001F, "control"),
    (0x007F, 0x009F, "control"),
    (0x00AD, 0x00AD, "invisible"),
    (0x034F, 0x034F, "invisible"),
    (0x061C, 0x061C, "bidi control"),
    (0x115F, 0x1160, "invisible"),
    (0x17B4, 0x17B5, "invisible"),
    (0x180B, 0x180F, "invisible"),
    (0x200B, 0x200D, "invisible"),
    (0x200E, 0x200F, "bidi control"),
    (0x2028, 0x2029, "invisible"),
    (0x202A, 0x202E, "bidi control"),
    (0x2060, 0x2064, "invisible"),
    (0x2066, 0x2069, "bidi control"),
    (0x206A, 0x206F, "invisible"),
    (0x3164, 0x3164, "invisible"),
    (0xE000, 0xF8FF, "private-use"),
    (0xFDD0, 0xFDEF, "private-use"),
    (0xFE00, 0xFE0F, "invisible"),
    (0xFEFF, 0xFEFF, "invisible"),
    (0xFFA0, 0xFFA0, "invisible"),
    (0xFFF0, 0xFFFB, "invisible"),
    (0xFFFE, 0xFFFF, "private-use"),
    (0x1D173, 0x1D17A, "invisible"),
    (0xE0000, 0xE0FFF, "invisible"),
    (0xF0000, 0x10FFFF, "private-use"),
];

/// The class of a character names must not contain, if any: `control`, `bidi control`,
/// `invisible` or `private-use` (which also covers the noncharacters U+FDD0–U+FDEF and the
/// last two code points of every plane).
pub fn forbidden_class(c: char) -> Option<&'static str> {
    let u = c as u32;
    if let Some((_, _, class)) = FORBIDDEN
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&u))
    {
        return Some(class);
    }
    // U+1FFFE, U+1FFFF, … U+EFFFF: noncharacters outside the table's ranges.
    ((u & 0xFFFE) == 0xFFFE).then_some("private-use")
}

/// The ECMA-262 (and Python `re`) pattern of a display name of 1 to `max` characters that
/// [`display_name`] accepts: none of the [`FORBIDDEN`] characters (nor a plane's last two code
/// points), no white space at either end. The length is in the pattern rather than in
/// `minLength`/`maxLength`, and there is no look-around: tools that fold a length into a pattern
/// re-escape it in forms an OpenAPI 3.0 (JSON Schema draft 4) validator refuses.
pub fn name_pattern(max: usize) -> String {
    let allowed = allowed_class("");
    let visible = allowed_class(WHITE_SPACE_CLASS);
    if max <= 1 {
        return format!("^(?:{visible})$");
    }
    let inner = max - 2;
    format!("^(?:{visible}|{visible}{allowed}{{0,{inner}}}{visible})$")
}

/// The Unicode `White_Space` characters (what `char::is_whitespace` and `str::trim` use) as
/// the inside of a character class. Spelled out rather than `\\s`, whose meaning differs between
/// regex engines (Python's ASCII mode, which Schemathesis uses, leaves out U+3000 and others).
pub const WHITE_SPACE_CLASS: &str =
    "\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";

/// A negated character class of the forbidden code points plus `extra`. Code points of the
/// Basic Multilingual Plane are written `\uXXXX`; others as the characters themselves, since
/// `\u{…}` needs the `u` flag that JSON Schema patterns do not carry.
fn allowed_class(extra: &str) -> String {
    fn atom(u: u32) -> String {
        match char::from_u32(u) {
            Some(c) if u > 0xFFFF => c.to_string(),
            _ => format!("\\u{u:04X}"),
        }
    }
    let mut class = format!("[^{extra}");
    let mut ranges: Vec<(u32, u32)> = FORBIDDEN.iter().map(|(lo, hi, _)| (*lo, *hi)).collect();
    ranges.extend((1..=0xE).map(|plane: u32| (plane * 0x10000 + 0xFFFE, plane * 0x10000 + 0xFFFF)));
    ranges.sort_unstable();
    for (lo, hi) in ranges {
        class.push_str(&atom(lo));
        if hi != lo {
            class.push('-');
            class.push_str(&atom(hi));
        }
    }
    class.push(']');
    class
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

/// A display name: 1 to `max` characters, no white space at either end, no forbidden character
/// ([`name_pattern`] is the same rule as a pattern). Returns it as an owned string.
///
/// # Errors
/// [`TextError`].
pub fn display_name(field: &'static str, value: &str, max: usize) -> Result<String, TextError> {
    check_chars(field, value)?;
    if value.trim().is_empty() {
        return Err(TextError::Empty { field });
    }
    if value.trim() != value {
        return Err(TextError::Padded { field });
    }
    if value.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published pattern's character class and the check agree on every code point, and
    /// the pattern refuses a blank name.
    #[test]
    fn pattern_class_equals_the_check() {
        let re = regex::Regex::new(&format!("^{}$", allowed_class(""))).unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                re.is_match(c.encode_utf8(&mut buf)),
                forbidden_class(c).is_none(),
                "U+{:04X}",
                c as u32
            );
        }
        let space = regex::Regex::new(&format!("^[{WHITE_SPACE_CLASS}]$")).unwrap();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                space.is_match(c.encode_utf8(&mut buf)),
                c.is_whitespace(),
                "U+{:04X}",
                c as u32
            );
        }
        let name = regex::Regex::new(&name_pattern(8)).unwrap();
        for value in [
            "Acme",
            "Acme Co",
            "名前",
            "a",
            "ab",
            "12345678",
            "123456789",
            "",
            " ",
            " a",
            "a ",
            "a\u{3000}",
            "\u{A0}a",
            "a\u{200B}b",
            "x\u{1FFFE}",
            "a\tb",
        ] {
            assert_eq!(
                name.is_match(value),
                display_name("name", value, 8).is_ok(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn padded_long_and_blank_names() {
        assert_eq!(display_name("name", "Acme Co", 8).as_deref(), Ok("Acme Co"));
        assert_eq!(
            display_name("name", " Acme", 8),
            Err(TextError::Padded { field: "name" })
        );
        assert_eq!(
            display_name("name", "Acme Corp", 8),
            Err(TextError::TooLong {
                field: "name",
                max: 8
            })
        );
        assert_eq!(
            display_name("name", " \u{3000} ", 8),
            Err(TextError::Empty { field: "name" })
        );
        assert!(display_name("name", "\u{FDD0}", 8).is_err());
        assert!(display_name("name", "\u{1FFFF}", 8).is_err());
    }

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
