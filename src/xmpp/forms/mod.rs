//! XEP-0004 data forms, one question per file: how a form is written
//! ([`xml`]), the forms that ask ([`params`], [`question`]), the forms
//! that answer ([`results`]), and a form read out as plain text
//! ([`plain`]). xmpp-parsers 0.23's `DataForm` cannot express a table
//! (`<reported/>` and `<item/>`), so forms are written as elements.

pub mod params;
pub mod plain;
pub mod question;
pub mod results;
pub mod xml;
