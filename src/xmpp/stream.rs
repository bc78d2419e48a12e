//! The XEP-0114 connection to Prosody.
//!
//! modman reads the stream itself, with its own XML parser settings,
//! rather than through tokio-xmpp's `Component` or `XmppStream`: both parse
//! with rxml's default limits, which refuse any name or attribute value over
//! 8 KiB and end the stream when they meet one. Prosody forwards stanzas of
//! up to 512 KiB, so one message with a long `id`, or one room presence with
//! a long caps `ver` (replayed on every re-join), from any user would keep
//! modman off the server. Here every token up to [`MAX_TOKEN`] is read, and
//! what goes wrong with one stanza is that stanza's own [`Incoming`] case:
//! an error reply if it was a request, dropped otherwise.

use std::time::Duration;

use minidom::rxml::{self, Event, GenericAsyncReader, GenericReader, Namespace};
use minidom::Element;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_xmpp::Stanza;

use super::limits::{MAX_ATTRIBUTES, MAX_ELEMENTS};
use super::parser::StanzaParser;
use xmpp_parsers::component::Handshake;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::ns;
use xmpp_parsers::stream_error::StreamError;

/// The bounds this stream enforces on each stanza, named where it is read.
pub use super::limits::{Limit, MAX_DEPTH};

/// Longest name, attribute value or text chunk read. Twice the largest
/// stanza Prosody forwards by default (512 KiB from servers and
/// components, 256 KiB from clients), since no single token of a stanza
/// can be longer than the stanza. The parser keeps a buffer this size.
pub const MAX_TOKEN: usize = 1024 * 1024;

/// Largest stanza modman writes. Prosody closes a component's stream on a
/// stanza over 512 KiB, which would cost every admin their answers and
/// modman a reconnect; replies are fitted well under this (see
/// [`crate::ops::REPLY_BYTES`]), and one that is not anyway is dropped
/// here, as that reply's problem rather than the connection's.
pub const MAX_STANZA_OUT: usize = 512 * 1024 - 1024;

/// Silence after which the stream reports [`Incoming::Idle`] (we then
/// ping), and the further silence after which it is declared dead.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest wait for Prosody to accept the TCP connection and then to
/// answer the handshake: a port that drops packets would otherwise hang
/// for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why connecting failed, worded for the admin reading the log.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach Prosody's component port at {server}: {reason}; is Prosody running with component_ports and component_interface set?")]
    Unreachable { server: String, reason: String },
    #[error(
        "Prosody refused the component {jid}: {reason}; {}",
        refusal_advice(reason, jid)
    )]
    Refused { jid: BareJid, reason: String },
}

impl ConnectError {
    /// Prosody accepted the secret but another connection holds the name:
    /// the configuration is right, modman (or something) is running.
    pub fn is_already_connected(&self) -> bool {
        matches!(self, ConnectError::Refused { reason, .. } if reason.starts_with("Conflict"))
    }
}

/// What to do about a refused handshake, from Prosody's own condition.
fn refusal_advice(reason: &str, jid: &BareJid) -> String {
    if reason.starts_with("NotAuthorized") {
        format!("the secret in modman.toml differs from component_secret under Component \"{jid}\" in prosody.cfg.lua")
    } else if reason.starts_with("Conflict") {
        "another modman (or another program) is connected as this component; stop it first".into()
    } else if reason.starts_with("HostUnknown") || reason.starts_with("ImproperAddressing") {
        format!("prosody.cfg.lua has no Component \"{jid}\" with a component_secret; add it and restart Prosody")
    } else {
        format!("check that component_secret matches modman.toml, that prosody.cfg.lua has Component \"{jid}\", and that no other modman is connected")
    }
}

/// One thing read from the stream.
#[derive(Debug)]
pub enum Incoming {
    /// Boxed: a stanza is large and the other cases are small.
    Stanza(Box<Stanza>),
    /// A stanza that was not accepted. For an IQ request the component
    /// still owes the sender an error reply, addressed from its head.
    Invalid { head: Head, problem: Problem },
    /// Nothing was read for a while; send something that makes Prosody
    /// answer, or the stream will be declared dead.
    Idle,
    /// The stream is over, for the reason given.
    Closed(String),
}

/// What a stanza is and who it is between, raw from the wire: all that is
/// needed to address an error reply to a stanza that was not accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub name: String,
    pub type_: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
}

impl Head {
    fn of(element: &Element) -> Head {
        let attr = |name: &str| element.attr(name).map(str::to_owned);
        Head {
            name: element.name().to_owned(),
            type_: attr("type"),
            from: attr("from"),
            to: attr("to"),
            id: attr("id"),
        }
    }

    /// Whether the stanza was an IQ request, which is owed an answer.
    pub fn is_iq_request(&self) -> bool {
        self.name == "iq" && matches!(self.type_.as_deref(), Some("get" | "set"))
    }
}

/// Why a stanza was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// It went past one of the [`Limit`]s; nothing was built from it.
    #[error("{0}")]
    OverLimit(Limit),
    /// It was read whole but is not a valid stanza.
    #[error("{0}")]
    Unreadable(String),
}

/// A top-level element read whole, or the end of the stream.
enum Read {
    Element(Element),
    Refused { head: Head, limit: Limit },
    Idle,
    Closed(String),
}

/// An authenticated component stream.
pub struct Connection {
    reader: GenericAsyncReader<BufReader<OwnedReadHalf>, StanzaParser>,
    writer: OwnedWriteHalf,
    /// The stanza being read. Kept here, not in [`Connection::next`]'s
    /// future, so that dropping that future (it runs in a `select!`)
    /// loses nothing.
    stanzas: Assembler,
    /// When the stream is next idle (no [`Incoming::Idle`] reported yet) or
    /// dead (reported).
    deadline: Instant,
    idle_reported: bool,
}

impl Connection {
    /// Connects to `server` (host:port) and authenticates as `jid`.
    pub async fn open(
        jid: &BareJid,
        server: &str,
        secret: &str,
    ) -> Result<Connection, ConnectError> {
        let unreachable = |reason: String| ConnectError::Unreachable {
            server: server.to_owned(),
            reason,
        };
        let refused = |reason: String| ConnectError::Refused {
            jid: jid.clone(),
            reason,
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(e.to_string()))?;
        // A reply is written in pieces; with Nagle's algorithm the last one
        // waits for Prosody's delayed ACK, about 40 ms per large stanza.
        tcp.set_nodelay(true)
            .map_err(|e| unreachable(e.to_string()))?;
        let (read, writer) = tcp.into_split();
        let mut connection = Connection {
            reader: GenericAsyncReader::with_options(BufReader::new(read), parser_options()),
            writer,
            stanzas: Assembler::default(),
            deadline: Instant::now() + HANDSHAKE_TIMEOUT,
            idle_reported: true,
        };
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}'>",
            ns::COMPONENT,
            ns::STREAM,
            jid.domain()
        );
        connection
            .write(header.as_bytes())
            .await
            .map_err(unreachable)?;
        let stream_id = connection
            .read_header()
            .await
            .map_err(refused)?
            .ok_or_else(|| refused("Prosody sent no stream id".into()))?;
        let handshake = Element::from(Handshake::from_stream_id_and_password(stream_id, secret));
        connection
            .send_element(&handshake)
            .await
            .map_err(unreachable)?;
        loop {
            match connection.read_element().await {
                Read::Element(element) if element.is("handshake", ns::COMPONENT) => {
                    connection.reset_deadline();
                    return Ok(connection);
                }
                Read::Element(element) if element.is("error", ns::STREAM) => {
                    return Err(refused(stream_error_text(element)))
                }
                // Stream features, if any: a component stream has none.
                Read::Element(_) | Read::Refused { .. } => continue,
                Read::Idle => continue,
                Read::Closed(reason) => return Err(refused(reason)),
            }
        }
    }

    /// Reads Prosody's stream header; returns its stream id.
    async fn read_header(&mut self) -> Result<Option<String>, String> {
        loop {
            match tokio::time::timeout_at(self.deadline, self.reader.read()).await {
                Err(_) => return Err("no stream header from Prosody in time".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(None)) => return Err("Prosody closed the connection".into()),
                Ok(Ok(Some(Event::StartElement(_, (namespace, name), attrs)))) => {
                    if name.as_str() != "stream" || namespace.as_str() != ns::STREAM {
                        return Err(format!("Prosody opened the stream with <{name}>"));
                    }
                    return Ok(attrs.get(Namespace::none(), "id").cloned());
                }
                Ok(Ok(Some(_))) => continue,
            }
        }
    }

    /// Reads the next thing from the stream. Cancel-safe: dropping the
    /// future loses nothing.
    pub async fn next(&mut self) -> Incoming {
        loop {
            let element = match self.read_element().await {
                Read::Element(element) => element,
                Read::Refused { head, limit } => {
                    return Incoming::Invalid {
                        head,
                        problem: Problem::OverLimit(limit),
                    }
                }
                Read::Idle => return Incoming::Idle,
                Read::Closed(reason) => return Incoming::Closed(reason),
            };
            if element.is("error", ns::STREAM) {
                return Incoming::Closed(format!(
                    "Prosody sent a stream error: {}",
                    stream_error_text(element)
                ));
            }
            if element.ns() != ns::COMPONENT {
                tracing::debug!("ignored a stream element <{}/>", element.name());
                continue;
            }
            return stanza(element);
        }
    }

    /// Reads events until a top-level element is complete.
    async fn read_element(&mut self) -> Read {
        loop {
            let event = match tokio::time::timeout_at(self.deadline, self.reader.read()).await {
                Err(_) if self.idle_reported => {
                    return Read::Closed(format!(
                        "Prosody sent nothing for {} s, not even an answer to a ping",
                        (READ_TIMEOUT + RESPONSE_TIMEOUT).as_secs()
                    ))
                }
                Err(_) => {
                    self.idle_reported = true;
                    self.deadline = Instant::now() + RESPONSE_TIMEOUT;
                    return Read::Idle;
                }
                Ok(Err(e)) => return Read::Closed(e.to_string()),
                Ok(Ok(None)) => return Read::Closed("Prosody closed the connection".into()),
                Ok(Ok(Some(event))) => event,
            };
            self.reset_deadline();
            match self.stanzas.feed(event) {
                Some(Assembled::Element(element)) => return Read::Element(element),
                Some(Assembled::Refused { head, limit }) => return Read::Refused { head, limit },
                Some(Assembled::StreamEnd) => {
                    return Read::Closed("Prosody ended the stream".into())
                }
                None => {}
            }
        }
    }

    fn reset_deadline(&mut self) {
        self.idle_reported = false;
        self.deadline = Instant::now() + READ_TIMEOUT;
    }

    /// Sends one stanza, with any character XML forbids replaced (see
    /// [`crate::clean::clean`]): the renderers clean what they write, and
    /// this is the last line, since one such character anywhere makes
    /// Prosody close the stream (and minidom's writer panics on it).
    pub async fn send(&mut self, stanza: Stanza) -> Result<(), String> {
        let mut element = Element::from(stanza);
        if clean_element(&mut element) {
            tracing::warn!(
                "replaced control characters in a <{}/> to {}",
                element.name(),
                element.attr("to").unwrap_or("?")
            );
        }
        self.send_element(&element).await
    }

    /// Writes one element. One that cannot be written as XML (a character
    /// XML forbids, which Prosody would answer by closing the stream), or
    /// that is over [`MAX_STANZA_OUT`], is logged and dropped: it is that
    /// reply's problem, never the connection's.
    async fn send_element(&mut self, element: &Element) -> Result<(), String> {
        let mut bytes = Vec::new();
        if let Err(e) = element.write_to(&mut bytes) {
            tracing::warn!(
                "dropped a <{}/> that could not be written as XML: {e}",
                element.name()
            );
            return Ok(());
        }
        if bytes.len() > MAX_STANZA_OUT {
            tracing::warn!(
                "dropped a <{}/> to {} of {} bytes, over the {MAX_STANZA_OUT} Prosody accepts from a component",
                element.name(),
                element.attr("to").unwrap_or("?"),
                bytes.len()
            );
            return Ok(());
        }
        self.write(&bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(|e| format!("writing to Prosody: {e}"))
    }

    /// Ends the stream politely, so Prosody logs a clean disconnect.
    pub async fn close(mut self) {
        if let Err(e) = self.write(b"</stream:stream>").await {
            tracing::debug!("closing the stream: {e}");
        }
        let _ = self.writer.shutdown().await;
    }
}

/// A blocking reader of stream bytes with the component's parser, for
/// tests and fuzzing.
pub type StanzaReader<T> = GenericReader<T, StanzaParser>;

/// The parser options modman reads Prosody's stream with.
pub fn parser_options() -> rxml::parser::Options {
    rxml::parser::Options {
        max_token_length: MAX_TOKEN,
        ..Default::default()
    }
}

/// Builds top-level elements (stanzas) from the parser's events, after the
/// stream header, within the [`Limit`]s. Apart from the socket so it can
/// be fuzzed.
#[derive(Default)]
pub struct Assembler {
    /// The stanza's element and the open children below it.
    open: Vec<Element>,
    /// Elements and attributes of the stanza being read so far.
    elements: usize,
    attributes: usize,
    /// Set once the stanza being read went past a limit: the rest of it is
    /// only counted, to find its end.
    refusing: Option<Refusing>,
}

/// A stanza past a limit, being read to its end.
struct Refusing {
    head: Head,
    limit: Limit,
    /// Elements open below the stream, the stanza's own included.
    depth: usize,
}

/// What a run of events completed.
pub enum Assembled {
    Element(Element),
    /// A stanza that went past a limit, read to its end; nothing below its
    /// head was kept.
    Refused {
        head: Head,
        limit: Limit,
    },
    /// The stream header's end tag.
    StreamEnd,
}

impl Assembler {
    /// Takes one event; returns what it completed, if anything.
    pub fn feed(&mut self, event: Event) -> Option<Assembled> {
        if let Some(refusing) = &mut self.refusing {
            match event {
                Event::StartElement(..) => refusing.depth += 1,
                Event::EndElement(_) => refusing.depth -= 1,
                Event::XmlDeclaration(..) | Event::Text(..) => {}
            }
            if refusing.depth > 0 {
                return None;
            }
            let Refusing { head, limit, .. } = self.refusing.take()?;
            return Some(Assembled::Refused { head, limit });
        }
        match event {
            Event::XmlDeclaration(..) => None,
            Event::StartElement(_, (namespace, name), attrs) => {
                self.elements += 1;
                self.attributes += attrs.len();
                let over = if self.open.len() >= MAX_DEPTH {
                    Some(Limit::Depth)
                } else if self.elements > MAX_ELEMENTS {
                    Some(Limit::Elements)
                } else if self.attributes > MAX_ATTRIBUTES {
                    Some(Limit::Attributes)
                } else {
                    None
                };
                let mut element = Element::builder(name.as_str(), namespace.as_str()).build();
                for ((namespace, name), value) in attrs.into_iter() {
                    // Past a limit only the head of a stanza is kept.
                    let head = namespace.is_none()
                        && matches!(name.as_str(), "type" | "from" | "to" | "id");
                    if over.is_none() || head {
                        element.set_attr(namespace, name, value);
                    }
                }
                match over {
                    None => self.open.push(element),
                    Some(limit) => {
                        let head = Head::of(self.open.first().unwrap_or(&element));
                        let depth = self.open.len() + 1;
                        // What was built is within the limits, so dropping
                        // it recurses no deeper than they allow.
                        self.open.clear();
                        self.end_stanza();
                        self.refusing = Some(Refusing { head, limit, depth });
                    }
                }
                None
            }
            // Whitespace between stanzas has no parent and no meaning.
            Event::Text(_, text) => {
                if let Some(parent) = self.open.last_mut() {
                    parent.append_text_node(text);
                }
                None
            }
            Event::EndElement(_) => match (self.open.pop(), self.open.last_mut()) {
                (None, _) => Some(Assembled::StreamEnd),
                (Some(child), Some(parent)) => {
                    parent.append_child(child);
                    None
                }
                (Some(element), None) => {
                    self.end_stanza();
                    Some(Assembled::Element(element))
                }
            },
        }
    }

    fn end_stanza(&mut self) {
        self.elements = 0;
        self.attributes = 0;
    }
}

/// A complete top-level element in the component namespace, as a typed
/// stanza or, if it is not one, as the stanza's own problem.
pub fn stanza(element: Element) -> Incoming {
    let head = Head::of(&element);
    match Stanza::try_from(element) {
        Ok(stanza) => Incoming::Stanza(Box::new(stanza)),
        Err(e) => Incoming::Invalid {
            head,
            problem: Problem::Unreadable(e.to_string()),
        },
    }
}

/// Cleans every text node and attribute value below `element`; returns
/// whether anything changed.
fn clean_element(element: &mut Element) -> bool {
    let mut changed = false;
    for (_, value) in element.attrs_mut().iter_mut() {
        changed |= crate::clean::clean_in_place(value);
    }
    for text in element.texts_mut() {
        changed |= crate::clean::clean_in_place(text);
    }
    for child in element.children_mut() {
        changed |= clean_element(child);
    }
    changed
}

/// The condition and text of a stream error, for a log line.
fn stream_error_text(element: Element) -> String {
    let error = match StreamError::try_from(element) {
        Ok(error) => error,
        Err(e) => return format!("an unreadable stream error ({e})"),
    };
    let condition = format!("{:?}", error.condition);
    match error.texts.values().find(|t| !t.is_empty()) {
        Some(text) => format!("{condition}: {text}"),
        None => condition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the assembler completes from `stanzas`, read after a
    /// stream header as the connection reads them.
    fn assemble(stanzas: &str) -> Vec<Assembled> {
        let input = format!(
            "<stream:stream xmlns='jabber:component:accept' xmlns:stream='{}'>{stanzas}",
            ns::STREAM
        );
        let mut reader = StanzaReader::with_options(input.as_bytes(), parser_options());
        let mut assembler = Assembler::default();
        assert!(matches!(
            reader.read(),
            Ok(Some(Event::XmlDeclaration(..)) | Some(Event::StartElement(..)))
        ));
        let mut done = Vec::new();
        while let Ok(Some(event)) = reader.read() {
            done.extend(assembler.feed(event));
        }
        done
    }

    fn nested(levels: usize) -> String {
        format!("{}{}", "<a>".repeat(levels), "</a>".repeat(levels))
    }

    fn refused(done: &Assembled) -> Option<(&Head, Limit)> {
        match done {
            Assembled::Refused { head, limit } => Some((head, *limit)),
            _ => None,
        }
    }

    #[test]
    fn a_stanza_nested_past_the_bound_is_refused_whole_and_the_next_one_is_read() {
        let deep = nested(30_000);
        let done = assemble(&format!(
            "<iq type='set' id='deep' from='u@x/r' to='modman.x'>{deep}</iq><message from='u@x/r'><body>hi</body></message>"
        ));
        assert_eq!(done.len(), 2);
        let (head, limit) = refused(&done[0]).expect("refused");
        assert_eq!(limit, Limit::Depth);
        assert!(head.is_iq_request());
        assert_eq!(
            (head.id.as_deref(), head.from.as_deref()),
            (Some("deep"), Some("u@x/r"))
        );
        let Assembled::Element(next) = &done[1] else {
            panic!("the next stanza was not read");
        };
        assert_eq!(next.name(), "message");
        assert!(matches!(stanza(next.clone()), Incoming::Stanza(_)));
    }

    #[test]
    fn depth_up_to_the_bound_is_read() {
        let done = assemble(&format!("<message>{}</message>", nested(MAX_DEPTH - 1)));
        assert!(matches!(done.as_slice(), [Assembled::Element(_)]));
        let done = assemble(&format!("<message>{}</message>", nested(MAX_DEPTH)));
        assert_eq!(refused(&done[0]).map(|(_, l)| l), Some(Limit::Depth));
    }

    #[test]
    fn element_and_attribute_counts_are_bounded_per_stanza() {
        let wide = "<a/>".repeat(MAX_ELEMENTS);
        let done = assemble(&format!("<message id='w'>{wide}</message><presence/>"));
        let (head, limit) = refused(&done[0]).expect("refused");
        assert_eq!(
            (limit, head.name.as_str(), head.id.as_deref()),
            (Limit::Elements, "message", Some("w"))
        );
        assert!(
            matches!(done[1], Assembled::Element(_)),
            "the count starts again"
        );

        let attributes: String = (0..60).map(|i| format!(" a{i}='v'")).collect();
        let many = format!("<a{attributes}/>").repeat(MAX_ATTRIBUTES / 60 + 1);
        let done = assemble(&format!("<message>{many}</message>"));
        assert_eq!(refused(&done[0]).map(|(_, l)| l), Some(Limit::Attributes));

        // Many stanzas, each within the bounds, are each read.
        let within = format!(
            "<message>{}</message>",
            "<a x='1'/>".repeat(MAX_ELEMENTS / 2)
        );
        let done = assemble(&within.repeat(3));
        assert_eq!(
            done.iter()
                .filter(|d| matches!(d, Assembled::Element(_)))
                .count(),
            3
        );
    }

    #[test]
    fn nothing_xml_forbids_is_written() {
        let mut element: Element =
            "<message xmlns='jabber:component:accept' to='a@b'><body>x</body><x xmlns='urn:x' a='y'/></message>"
                .parse()
                .unwrap();
        assert!(!clean_element(&mut element));
        for text in element
            .get_child_mut("body", ns::COMPONENT)
            .unwrap()
            .texts_mut()
        {
            text.push_str("\u{1b}[2J\u{0}");
        }
        let x = element.get_child_mut("x", "urn:x").unwrap();
        for (_, value) in x.attrs_mut().iter_mut() {
            value.push('\u{7}');
        }
        assert!(clean_element(&mut element));
        let mut bytes = Vec::new();
        element.write_to(&mut bytes).unwrap();
        let written = String::from_utf8(bytes).unwrap();
        assert!(
            written.contains("x\u{FFFD}[2J\u{FFFD}") && written.contains("y\u{FFFD}"),
            "{written}"
        );
    }
}
