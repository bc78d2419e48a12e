//! A chat line from anyone, read against every operation's declared
//! parameters: never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use modman::ops::Input;
use modman::xmpp::chat::line::{parse_line, Line};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Line::Command { op, raw }) = parse_line(text) {
        let _ = Input::check(op.spec().params, raw);
    }
});
