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
        out.push(text);
    }
    links(out.join("\n").trim())
}

/// `[text](url)` as `text (url)`, and `[text](#anchor)` as `text`. The
/// text may wrap onto the next line, as READMEs wrap paragraphs; a `[`
/// that starts no link is left as it is.
fn links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find(']').and_then(|close| {
            let label = &after[..close];
            let target = after[close + 1..].strip_prefix('(')?;
            let end = target.find(')')?;
            let url = &target[..end];
            let plain_label = !label.contains('[') && !label.contains("\n\n");
            let plain_url = !url.is_empty() && !url.contains(char::is_whitespace);
            (plain_label && plain_url).then(|| (label, url, &target[end + 1..]))
        });
        match link {
            Some((label, url, tail)) => {
                out += &rest[..open];
                out += label;
                if !url.starts_with('#') {
                    out += &format!(" ({url})");
                }
                rest = tail;
            }
            None => {
                out += &rest[..=open];
                rest = after;
            }
        }
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

    #[test]
    fn links_may_wrap_and_anchors_go() {
        let markdown = "see [Lua pattern\nmatching](http://lua.org/x#5) and the [chains](#chains); [not a link] stays, [x](a b) too";
        assert_eq!(
            plain(markdown),
            "see Lua pattern\nmatching (http://lua.org/x#5) and the chains; [not a link] stays, [x](a b) too"
        );
    }
}
