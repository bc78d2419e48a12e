//! What a module says about itself: README front matter (with its
//! rockspec dependencies), the Compatibility table, `module:depends`.
//! Never a panic, and every dependency found is a valid module name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use modman::repo::index::is_valid_module_name;
use modman::repo::metadata;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = metadata::parse_readme(&text);
    for name in metadata::depends(&text) {
        assert!(is_valid_module_name(&name), "{name:?}");
    }
});
