//! The bounds on one stanza: the stream enforces them while it reads, and
//! the parser resolves names only as deep as they allow.

/// The bounds on one stanza, enforced while it is read, before anything is
/// built from it. Everything below the stanza is handled by code that
/// recurses into children (the typed parsers, minidom's own drop), so the
/// depth bound is what keeps an attacker's nesting off modman's stack; the
/// counts bound the memory one stanza can take (a minidom element with its
/// attributes is some hundreds of bytes: 10,000 of them are a few MiB,
/// where Prosody's 512 KiB would otherwise allow some 130,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    #[error("elements nested more than {MAX_DEPTH} deep")]
    Depth,
    #[error("more than {MAX_ELEMENTS} elements in one stanza")]
    Elements,
    #[error("more than {MAX_ATTRIBUTES} attributes in one stanza")]
    Attributes,
}

/// Deepest nesting accepted, the stanza itself being level 1. The deepest
/// real payloads modman can be sent are some 12 levels: a MAM result or
/// carbon (`message/result/forwarded/message`) carrying XHTML-IM
/// (`html/body/p/span/...`), a PubSub event carrying Atom
/// (`message/event/items/item/entry/content/div/...`); data forms are 5
/// (`iq/command/x/field/value`), MUC presences with caps 4. 64 leaves room
/// for any of them, and 64 frames of recursion cost nothing.
pub const MAX_DEPTH: usize = 64;
/// Most elements in one stanza: a submitted form choosing every module of
/// a large repository is some 1,000 `<value/>`s, a MUC presence a handful.
pub const MAX_ELEMENTS: usize = 10_000;
/// Most attributes in one stanza, summed over its elements: two per
/// element on average at the element bound.
pub const MAX_ATTRIBUTES: usize = 20_000;
