//! What Prosody forwards from anyone: bytes after the stream header are
//! read with modman's parser settings into stanzas, exactly as the
//! component stream does; each stanza is typed, and a command request and
//! its form are read. Never a panic: in the daemon, a panic here would end
//! every admin's session.

#![no_main]

use libfuzzer_sys::fuzz_target;
use modman::xmpp::command::CommandRequest;
use modman::xmpp::forms::submitted_values;
use modman::xmpp::stream::{parser_options, stanza, Assembled, Assembler, Incoming, StanzaReader};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'>";

fuzz_target!(|data: &[u8]| {
    let input = [HEADER, data].concat();
    let mut reader = StanzaReader::with_options(&input[..], parser_options());
    let mut stanzas = Assembler::default();
    // The header itself.
    let Ok(Some(_)) = reader.read() else {
        return;
    };
    while let Ok(Some(event)) = reader.read() {
        let Some(Assembled::Element(element)) = stanzas.feed(event) else {
            continue;
        };
        let Incoming::Stanza(stanza) = stanza(element) else {
            continue;
        };
        if let Stanza::Iq(Iq::Set { payload, .. }) = *stanza {
            if let Ok(request) = CommandRequest::try_from(&payload) {
                if let Some(form) = request.form.as_ref() {
                    let _ = submitted_values(form);
                }
            }
        }
    }
});
