//! Nesting from anyone: a stanza whose elements go as deep as the input
//! says (up to 100,000 levels), with names, prefixes and text taken from
//! the input, is read with modman's parser and assembler exactly as the
//! component stream reads it. It must come out as one stanza within the
//! depth bound or one refused past it, never a crash, and the next stanza
//! must still be read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use modman::xmpp::stream::{parser_options, Assembled, Assembler, StanzaReader, MAX_DEPTH};

const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'>";

fuzz_target!(|data: &[u8]| {
    let Some((&[high, low], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let levels = (usize::from(high) << 8 | usize::from(low)) * 2;
    // Each level's name: plain, prefixed (declared on the stanza), or in a
    // namespace of its own, as the input picks.
    let name = |level: usize| match rest.get(level % rest.len().max(1)).copied().unwrap_or(0) % 3 {
        0 => ("a".to_owned(), String::new()),
        1 => ("p:a".to_owned(), String::new()),
        _ => ("a".to_owned(), " xmlns='urn:x'".to_owned()),
    };
    let text: String = String::from_utf8_lossy(rest)
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .take(64)
        .collect();
    let mut xml = format!("{HEADER}<message xmlns:p='urn:p' id='deep'>");
    for level in 0..levels {
        let (tag, declaration) = name(level);
        xml += &format!("<{tag}{declaration}>");
    }
    xml += &text;
    for level in (0..levels).rev() {
        xml += &format!("</{}>", name(level).0);
    }
    xml += "</message><presence/>";

    let mut reader = StanzaReader::with_options(xml.as_bytes(), parser_options());
    let mut stanzas = Assembler::default();
    let Ok(Some(_)) = reader.read() else {
        panic!("the stream header did not read");
    };
    let mut done = Vec::new();
    while let Ok(Some(event)) = reader.read() {
        done.extend(stanzas.feed(event));
    }
    assert_eq!(done.len(), 2, "one stanza and the next");
    match (&done[0], levels < MAX_DEPTH) {
        (Assembled::Element(_), true) => {}
        (Assembled::Refused { head, .. }, false) => assert_eq!(head.id.as_deref(), Some("deep")),
        _ => panic!("{levels} levels read the wrong way"),
    }
    assert!(matches!(done[1], Assembled::Element(_)));
});
