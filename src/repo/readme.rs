//! Module READMEs as people read them in a chat window or a data form:
//! prosody-modules writes them in Markdown, and most clients show text as
//! it is, so `info` sends them as plain text.

/// A module README (Markdown, as prosody-modules writes it) as plain text
/// for clients that show text as it is: no underline rows, table borders,
/// escapes, emphasis marks or link syntax.
pub fn plain(markdown: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        let is_rule = !trimmed.is_empty()
            && trimmed
                .chars()
                .all(|c| matches!(c, '=' | '-' | ' ' | '|' | ':'));
        if is_rule {
            continue;
        }
        // Headings lose their marks; indented lines (tables, code) keep
        // their indent.
        let mut text = match trimmed.strip_prefix('#') {
            Some(_) => trimmed.trim_start_matches('#').trim_start().to_owned(),
            None => line.trim_end().to_owned(),
        };
        for (from, to) in [
            ("\\_", "_"),
            ("\\*", "*"),
            ("\\[", "["),
            ("\\]", "]"),
            ("**", ""),
            ("`", ""),
        ] {
            text = text.replace(from, to);
        }
        out.push(links(&text));
    }
    let text = out.join("\n");
    text.trim().to_owned()
}

/// `[text](url)` as `text (url)`.
fn links(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        out += &rest[..open];
        out += &format!("{} ({})", &rest[open + 1..close], &rest[close + 2..end]);
        rest = &rest[end + 1..];
    }
    out + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readmes_lose_their_markup() {
        let markdown = "Introduction\n============\n\nmod\\_firewall is **very** `useful`, see [XEP-0357](https://xmpp.org/extensions/xep-0357.html).\n\n  ----- -------\n  0.12  Works\n  ----- -------\n# Details\n";
        assert_eq!(
            plain(markdown),
            "Introduction\n\nmod_firewall is very useful, see XEP-0357 (https://xmpp.org/extensions/xep-0357.html).\n\n  0.12  Works\nDetails"
        );
    }
}
