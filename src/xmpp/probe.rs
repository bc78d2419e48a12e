//! `check`'s component row: a trial handshake with Prosody, from the
//! layer that speaks XMPP, for when this process is not connected itself.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::stream::Connection;
use crate::config::Config;
use crate::ops::check::ComponentProbe;

/// Tries modman's handshake with the configured secret.
pub struct HandshakeProbe(pub Arc<Config>);

impl ComponentProbe for HandshakeProbe {
    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let component = &self.0.component;
            match Connection::open(&component.jid, &component.server, &component.secret).await {
                Ok(connection) => {
                    connection.close().await;
                    Ok(format!(
                        "Prosody at {} accepts {} with this secret",
                        component.server, component.jid
                    ))
                }
                Err(e) if e.is_already_connected() => Ok(format!(
                    "the secret is right; a modman is connected as {} now",
                    component.jid
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
