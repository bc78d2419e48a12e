//! The command-line front end, as the binary builds it: the operations as
//! subcommands (`ops`), the manual pages (`manuals`), and `modman reload`
//! (`running`). Like `xmpp`, it only renders what `ops` declares.

pub mod manuals;
pub mod ops;
pub mod running;
