//! The module archive reader: a hostile tar.gz never panics the reader,
//! never yields a path out of the module directory, and never unpacks past
//! the size cap.

#![no_main]

use libfuzzer_sys::fuzz_target;
use modman::repo::archive;
use modman::repo::index::is_safe_relative_path;

fuzz_target!(|data: &[u8]| {
    let Ok(files) = archive::read(data, "fuzz") else {
        return;
    };
    let mut total = 0;
    for file in &files {
        assert!(is_safe_relative_path(&file.path), "{:?}", file.path);
        total += file.data.len();
    }
    assert!(total as u64 <= 64 * 1024 * 1024);
});
