//! The XEP-0114 connection to Prosody.
//!
//! Built from tokio-xmpp's public stream parts rather than its `Component`
//! wrapper, because the wrapper reports three different things as the same
//! end of stream: a stanza xmpp-parsers cannot parse (any user could then
//! knock modman offline with one malformed IQ), an idle read timeout, and a
//! real disconnect. Here each is its own [`Incoming`] case, and a refused
//! handshake carries Prosody's own reason.

use std::borrow::Cow;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::xmlstream::{
    initiate_stream, FallibleStreamElement, ReadError, StreamElementError, StreamHeader, Timeouts,
    XmppStream, XmppStreamElement,
};
use tokio_xmpp::Stanza;
use xmpp_parsers::component::Handshake;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::ns;

/// Silence after which the stream reports [`Incoming::Idle`] (we then
/// ping), and the further silence after which it is declared dead.
const TIMEOUTS: Timeouts = Timeouts {
    read_timeout: Duration::from_secs(60),
    response_timeout: Duration::from_secs(20),
};

/// Longest wait for Prosody to accept the TCP connection (tokio-xmpp's own
/// connector has none: a port that drops packets would hang for minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// A stanza that did not parse. For an IQ request the component still
    /// owes the sender an error reply, addressed from these raw attributes.
    Invalid {
        is_iq_request: bool,
        from: Option<String>,
        to: Option<String>,
        id: Option<String>,
        reason: String,
    },
    /// Nothing was read for a while; send something that makes Prosody
    /// answer, or the stream will be declared dead.
    Idle,
    /// The stream is over, for the reason given.
    Closed(String),
}

/// An authenticated component stream.
pub struct Connection {
    stream: XmppStream<BufStream<TcpStream>>,
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
        let header = StreamHeader {
            to: Some(Cow::Borrowed(jid.domain().as_str())),
            from: None,
            id: None,
        };
        let mut pending = initiate_stream(BufStream::new(tcp), ns::COMPONENT, header, TIMEOUTS)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let stream_id = pending
            .take_header()
            .id
            .ok_or_else(|| refused("Prosody sent no stream id".into()))?
            .into_owned();
        let mut stream: XmppStream<_> = pending.skip_features();
        stream
            .send(&XmppStreamElement::ComponentHandshake(
                Handshake::from_stream_id_and_password(stream_id, secret),
            ))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        loop {
            match stream.next().await {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::ComponentHandshake(_)))) => {
                    return Ok(Connection { stream })
                }
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(error)))) => {
                    return Err(refused(stream_error_text(&error.0)))
                }
                Some(Err(ReadError::SoftTimeout)) => continue,
                Some(Ok(other)) => {
                    return Err(refused(format!(
                        "unexpected answer to the handshake: {other:?}"
                    )))
                }
                Some(Err(e)) => return Err(refused(e.to_string())),
                None => return Err(refused("Prosody closed the connection".into())),
            }
        }
    }

    /// Reads the next thing from the stream. Cancel-safe: dropping the
    /// future loses nothing.
    pub async fn next(&mut self) -> Incoming {
        loop {
            let element = match self.stream.next().await {
                None => return Incoming::Closed("Prosody closed the connection".into()),
                Some(Err(ReadError::SoftTimeout)) => return Incoming::Idle,
                Some(Err(ReadError::StreamFooterReceived)) => {
                    return Incoming::Closed("Prosody ended the stream".into())
                }
                Some(Err(ReadError::HardError(e))) => return Incoming::Closed(e.to_string()),
                Some(Err(ReadError::ParseError(e))) => {
                    tracing::debug!("skipped an element that did not parse: {e}");
                    continue;
                }
                Some(Ok(element)) => element,
            };
            match element {
                FallibleStreamElement::Ok(XmppStreamElement::Stanza(stanza)) => {
                    return Incoming::Stanza(Box::new(stanza))
                }
                FallibleStreamElement::Ok(XmppStreamElement::StreamError(error)) => {
                    return Incoming::Closed(format!(
                        "Prosody sent a stream error: {}",
                        stream_error_text(&error.0)
                    ))
                }
                FallibleStreamElement::Ok(other) => {
                    tracing::debug!("ignored a stream element: {other:?}")
                }
                FallibleStreamElement::Err(StreamElementError::InvalidStanza {
                    name,
                    header,
                    error,
                    ..
                }) => {
                    let is_iq_request = name.to_string() == "iq"
                        && matches!(header.type_.as_deref(), Some("get" | "set"));
                    return Incoming::Invalid {
                        is_iq_request,
                        from: header.from,
                        to: header.to,
                        id: header.id,
                        reason: error.to_string(),
                    };
                }
                FallibleStreamElement::Err(error) => {
                    tracing::debug!("ignored an invalid element: {error}")
                }
            }
        }
    }

    /// Sends one stanza.
    pub async fn send(&mut self, stanza: Stanza) -> Result<(), String> {
        self.stream
            .send(&XmppStreamElement::Stanza(stanza))
            .await
            .map_err(|e| e.to_string())
    }

    /// Ends the stream politely, so Prosody logs a clean disconnect.
    pub async fn close(mut self) {
        if let Err(e) = SinkExt::<&XmppStreamElement>::close(&mut self.stream).await {
            tracing::debug!("closing the stream: {e}");
        }
    }
}

/// The condition and text of a stream error, for a log line.
fn stream_error_text(error: &xmpp_parsers::stream_error::StreamError) -> String {
    let condition = format!("{:?}", error.condition);
    match error.texts.values().find(|t| !t.is_empty()) {
        Some(text) => format!("{condition}: {text}"),
        None => condition,
    }
}
