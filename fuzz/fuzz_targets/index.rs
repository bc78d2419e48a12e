//! The repository index reader: whatever bytes a repository (or someone
//! between) serves, parsing never panics, and what it accepts is safe to
//! use as names, paths and text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use modman::repo::index::{is_safe_url_path, is_valid_module_name, Index};

fuzz_target!(|data: &[u8]| {
    let Ok(index) = Index::parse(data) else {
        return;
    };
    assert!(index.expires > index.generated);
    for module in &index.modules {
        assert!(is_valid_module_name(&module.name));
        assert!(is_safe_url_path(&module.archive));
        for text in [&module.version, &module.summary, &module.description] {
            assert!(modman::text::is_clean(text), "{text:?}");
        }
        assert!(module.dependencies.iter().all(|d| is_valid_module_name(&d.name)));
    }
});
