//! Cleaning of text from outside before it is shown or sent: control
//! characters out, one line where one line is wanted. It sits below every
//! folder (repo cleans what it reads, the renderers what they write, the
//! stream what it receives), so it imports nothing from the crate.

use std::borrow::Cow;

/// What stands in for a character that may not be shown.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` is a control character: XML 1.0 forbids the C0 ones (but
/// tab, newline and carriage return), and a terminal acts on C0, DEL and
/// C1 (ESC clears the screen or retitles the window, BEL rings). A lone
/// carriage return counts too: on a terminal it overwrites the line. The
/// two noncharacters XML also forbids go with them.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// Whether `text` holds nothing [`clean`] would change.
pub fn is_clean(text: &str) -> bool {
    !text.chars().any(is_control)
}

/// `text` safe to put in a stanza or print on a terminal: CRLF becomes a
/// newline and every other control character [`REPLACEMENT`]. Text from a
/// repository (a README, a summary) reaches admins through chat, forms
/// and the shell; one ESC or NUL would make Prosody close modman's stream
/// (the character is not XML) or drive the admin's terminal. Borrowed when
/// nothing changes, which is almost always.
pub fn clean(text: &str) -> Cow<'_, str> {
    if is_clean(text) {
        return Cow::Borrowed(text);
    }
    let text = text.replace("\r\n", "\n");
    Cow::Owned(
        text.chars()
            .map(|c| if is_control(c) { REPLACEMENT } else { c })
            .collect(),
    )
}

/// Cleans `text` in place; returns whether anything changed.
pub fn clean_in_place(text: &mut String) -> bool {
    match clean(text) {
        Cow::Borrowed(_) => false,
        Cow::Owned(cleaned) => {
            *text = cleaned;
            true
        }
    }
}

/// `text` on one line: line breaks and runs of blanks become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass_and_clean_text_is_not_copied() {
        let hostile = "a\u{1b}[2Jb\u{7}c\u{0}d\u{9b}e\u{7f}f\rg\u{FFFE}h";
        assert!(!is_clean(hostile));
        let cleaned = clean(hostile);
        assert!(is_clean(&cleaned), "{cleaned:?}");
        assert_eq!(
            cleaned,
            "a\u{FFFD}[2Jb\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}f\u{FFFD}g\u{FFFD}h"
        );
        assert_eq!(clean("line\r\nnext\ttab"), "line\nnext\ttab");
        assert!(matches!(clean("plain text, ünïcode ✓\n"), Cow::Borrowed(_)));
    }
}
