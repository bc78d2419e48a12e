//! The component stream's XML parser: rxml's raw parser, with namespaces
//! resolved here, and only as deep as a stanza may go.
//!
//! rxml's own namespace-resolving parser looks a name's namespace up by
//! walking every enclosing element, so reading n nested elements costs n²:
//! 30,000 `<a>` inside one another (210 KB from any user) took 2 s of CPU
//! before a single event reached the stanza [`Assembler`], which then only
//! counts them. Here each element's default namespace is carried down as
//! it is opened (looked up in one step), prefixes are looked up through at
//! most [`MAX_RESOLVED`] levels, and elements below that are passed on
//! unresolved (no namespace, no attributes) for the [`Assembler`] to count
//! and refuse: the cost of a stanza is linear in its size.
//!
//! [`Assembler`]: super::stream::Assembler

use std::collections::HashMap;

use minidom::rxml::error::{EndOrError, Error};
use minidom::rxml::parser::Result;
use minidom::rxml::{
    AttrMap, Event, Namespace, NcName, Options, Parse, RawEvent, RawParser, RawQName, WithOptions,
};

use super::limits::MAX_DEPTH;

/// Deepest element whose names are resolved: the stream header, then a
/// stanza's [`MAX_DEPTH`] levels. The assembler refuses a stanza at the
/// level past them, whatever its name.
pub const MAX_RESOLVED: usize = MAX_DEPTH + 1;

/// A parser of the component stream; see the module documentation.
pub struct StanzaParser {
    raw: RawParser,
    /// The resolved elements open, outermost first.
    scopes: Vec<Scope>,
    /// Elements open below the deepest resolved one.
    unresolved: usize,
    /// The element whose head (name and attributes) is being read.
    head: Option<Head>,
}

/// What an open element declared, with the default namespace in force in
/// it (its own declaration or its parent's).
struct Scope {
    default: Namespace<'static>,
    prefixes: HashMap<NcName, Namespace<'static>>,
}

/// An element head being read.
enum Head {
    Resolved {
        name: RawQName,
        attributes: Vec<(RawQName, String)>,
        default: Option<Namespace<'static>>,
        prefixes: HashMap<NcName, Namespace<'static>>,
    },
    /// Below [`MAX_RESOLVED`]: only its local name is kept.
    Unresolved(NcName),
}

impl WithOptions for StanzaParser {
    fn with_options(options: Options) -> Self {
        StanzaParser {
            raw: RawParser::with_options(options),
            scopes: Vec::new(),
            unresolved: 0,
            head: None,
        }
    }
}

impl Parse for StanzaParser {
    type Output = Event;

    fn parse(&mut self, r: &mut &[u8], at_eof: bool) -> Result<Option<Event>> {
        loop {
            let Some(raw) = self.raw.parse(r, at_eof)? else {
                return Ok(None);
            };
            if let Some(event) = self.resolve(raw).map_err(EndOrError::Error)? {
                return Ok(Some(event));
            }
        }
    }

    fn release_temporaries(&mut self) {
        self.raw.release_temporaries();
    }
}

impl StanzaParser {
    /// The event `raw` completes, if any.
    fn resolve(&mut self, raw: RawEvent) -> std::result::Result<Option<Event>, Error> {
        match raw {
            RawEvent::XmlDeclaration(metrics, version) => {
                Ok(Some(Event::XmlDeclaration(metrics, version)))
            }
            RawEvent::ElementHeadOpen(_, name) => {
                self.head = Some(
                    match self.unresolved > 0 || self.scopes.len() >= MAX_RESOLVED {
                        true => Head::Unresolved(name.1),
                        false => Head::Resolved {
                            name,
                            attributes: Vec::new(),
                            default: None,
                            prefixes: HashMap::new(),
                        },
                    },
                );
                Ok(None)
            }
            RawEvent::Attribute(_, (prefix, local), value) => {
                if let Some(Head::Resolved {
                    attributes,
                    default,
                    prefixes,
                    ..
                }) = &mut self.head
                {
                    match (prefix.as_ref().map(|p| p.as_str()), local.as_str()) {
                        (None, "xmlns") => *default = Some(Namespace::from(value)),
                        (Some("xmlns"), _) => {
                            if prefixes.insert(local, Namespace::from(value)).is_some() {
                                return Err(Error::DuplicateAttribute);
                            }
                        }
                        _ => attributes.push(((prefix, local), value)),
                    }
                }
                Ok(None)
            }
            RawEvent::ElementHeadClose(metrics) => match self.head.take() {
                None => Ok(None),
                Some(Head::Unresolved(local)) => {
                    self.unresolved += 1;
                    let name = (Namespace::none().clone(), local);
                    Ok(Some(Event::StartElement(metrics, name, AttrMap::new())))
                }
                Some(Head::Resolved {
                    name: (prefix, local),
                    attributes,
                    default,
                    prefixes,
                }) => {
                    let inherited = self.scopes.last().map(|s| s.default.clone());
                    let default = default
                        .or(inherited)
                        .unwrap_or_else(|| Namespace::none().clone());
                    self.scopes.push(Scope { default, prefixes });
                    let namespace = match prefix.as_deref() {
                        None => self.scopes.last().map(|s| s.default.clone()),
                        Some(prefix) => self.lookup(prefix),
                    }
                    .ok_or(Error::UndeclaredNamespacePrefix(None))?;
                    let mut resolved = AttrMap::new();
                    for ((prefix, local), value) in attributes {
                        let namespace = match prefix.as_deref() {
                            None => Namespace::none().clone(),
                            Some(prefix) => self
                                .lookup(prefix)
                                .ok_or(Error::UndeclaredNamespacePrefix(None))?,
                        };
                        if resolved.insert(namespace, local, value).is_some() {
                            return Err(Error::DuplicateAttribute);
                        }
                    }
                    Ok(Some(Event::StartElement(
                        metrics,
                        (namespace, local),
                        resolved,
                    )))
                }
            },
            RawEvent::ElementFoot(metrics) => {
                if self.unresolved > 0 {
                    self.unresolved -= 1;
                } else {
                    self.scopes.pop();
                }
                Ok(Some(Event::EndElement(metrics)))
            }
            // Text below the resolved levels belongs to a stanza being
            // refused: nothing reads it.
            RawEvent::Text(_, _) if self.unresolved > 0 => Ok(None),
            RawEvent::Text(metrics, text) => Ok(Some(Event::Text(metrics, text))),
        }
    }

    /// The namespace `prefix` stands for in the innermost scope, through at
    /// most [`MAX_RESOLVED`] scopes.
    fn lookup(&self, prefix: &str) -> Option<Namespace<'static>> {
        if prefix == "xml" {
            return Some(Namespace::xml().clone());
        }
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.prefixes.get(prefix).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::stream::{parser_options, StanzaReader};
    use minidom::rxml::Reader;

    /// The events of `xml` as (kind, namespace, name, attributes, text),
    /// which both parsers must agree on.
    fn events<P: Parse<Output = Event>>(
        mut reader: minidom::rxml::GenericReader<&[u8], P>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(event)) = reader.read() {
            out.push(match event {
                Event::XmlDeclaration(..) => "decl".to_owned(),
                Event::StartElement(_, (ns, name), attrs) => {
                    let mut attrs: Vec<String> = attrs
                        .into_iter()
                        .map(|((ns, name), value)| format!("{{{ns}}}{name}={value}"))
                        .collect();
                    attrs.sort();
                    format!("<{{{ns}}}{name} {}>", attrs.join(" "))
                }
                Event::EndElement(_) => "</>".to_owned(),
                Event::Text(_, text) => format!("text {text}"),
            });
        }
        out
    }

    #[test]
    fn names_resolve_as_rxml_resolves_them() {
        let xml = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'>\
            <message from='a@b/c' xml:lang='en' type='groupchat'><body>hi &amp; bye</body>\
            <x xmlns='http://jabber.org/protocol/muc#user'><item jid='a@b' role='moderator'/></x>\
            <p:event xmlns:p='urn:p' p:a='1' a='2'><p:items><item xmlns=''><inner/></item></p:items></p:event>\
            <delay xmlns='urn:xmpp:delay' stamp='2020'/></message>\
            <iq type='set' id='1'><command xmlns='http://jabber.org/protocol/commands' node='list'>\
            <x xmlns='jabber:x:data' type='submit'><field var='q'><value>a</value></field></x></command></iq>";
        let ours = events(StanzaReader::with_options(xml.as_bytes(), parser_options()));
        let theirs = events(Reader::with_options(xml.as_bytes(), parser_options()));
        assert_eq!(ours, theirs);
        assert!(ours.len() > 30);
    }

    #[test]
    fn what_rxml_refuses_is_refused() {
        for bad in [
            "<stream:stream xmlns:stream='s'><q:x/>",
            "<stream:stream xmlns:stream='s'><x a='1' a='2'/>",
            "<stream:stream xmlns:stream='s'><x xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>",
        ] {
            let mut reader = StanzaReader::with_options(bad.as_bytes(), parser_options());
            let mut failed = false;
            loop {
                match reader.read() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "{bad}");
        }
    }

    #[test]
    fn nesting_costs_linear_time_and_past_the_bound_names_are_not_resolved() {
        let levels = 30_000;
        let xml = format!(
            "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'><message>{}{}</message>",
            "<a x='1'>".repeat(levels),
            "</a>".repeat(levels)
        );
        let events = events(StanzaReader::with_options(xml.as_bytes(), parser_options()));
        assert_eq!(events.len(), 2 + 2 * levels + 1);
        let resolved = "<{jabber:component:accept}a {}x=1>".to_owned();
        let unresolved = "<{}a >".to_owned();
        // events[0] is the stream header, at depth 1.
        assert_eq!(events[MAX_RESOLVED - 1], resolved);
        assert_eq!(events[MAX_RESOLVED], unresolved);
        assert_eq!(events[levels], unresolved);
    }
}
