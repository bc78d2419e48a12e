//! What happens on the host: reading and (later) changing Prosody's module
//! directory. Blocking file work lives here and is called through
//! `spawn_blocking` by the operations.

pub mod modules_dir;
