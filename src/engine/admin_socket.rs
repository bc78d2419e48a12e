//! A client for Prosody's admin socket (`mod_admin_socket`, enabled with
//! `admin_shell`): the XML stream `prosodyctl shell` speaks, through which
//! modules are loaded and unloaded live, without a restart.
//!
//! The protocol, checked against Prosody 0.12.3: after both stream
//! headers, each `<repl-input>LUA</repl-input>` is answered by zero or more
//! `<repl-output>` lines and one `<repl-result>`, with `type='error'` when
//! it failed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const NS: &str = "xmpp:prosody.im/admin";
const HEADER: &str =
    "<stream:stream xmlns='xmpp:prosody.im/admin' xmlns:stream='http://etherx.jabber.org/streams'>";
/// Longest wait for one answer; loading a module is quick, but a module
/// can do work when it starts.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer accepted.
const MAX_REPLY: usize = 4 * 1024 * 1024;

/// Why the admin socket could not be used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("Prosody's admin socket {0} does not exist; add \"admin_shell\" to modules_enabled in prosody.cfg.lua (and restart Prosody), or fix prosody.admin_socket in modman.toml")]
    Missing(PathBuf),
    #[error("no permission to use Prosody's admin socket {0}; run modman as the prosody user")]
    Denied(PathBuf),
    #[error("Prosody's admin socket {path}: {reason}; is Prosody running?")]
    Io { path: PathBuf, reason: String },
    #[error("Prosody's admin socket {path} did not answer within {} seconds", TIMEOUT.as_secs())]
    Timeout { path: PathBuf },
    #[error("Prosody's admin socket sent something modman cannot read: {0}")]
    Protocol(String),
}

/// Prosody's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    /// The `<repl-output>` lines.
    pub output: Vec<String>,
    /// The `<repl-result>` text.
    pub result: String,
}

impl Reply {
    /// Prosody's own words for a failure: the output lines (which name the
    /// file it looked for, the Lua error) and the result.
    pub fn error_text(&self) -> String {
        // A Lua stack trace helps nobody reading a chat line; it stays in
        // Prosody's log.
        let without_trace = |text: &str| {
            text.split("\nstack traceback:")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let result = without_trace(&self.result);
        let output = without_trace(&self.output.join("\n"));
        let extra = output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !result.contains(*l))
            .map(str::to_owned);
        std::iter::once(result.clone())
            .chain(extra)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A host as Prosody serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// `None` for a VirtualHost; the component module (`muc`,
    /// `http_file_share`...) for an internal component; `Some("component")`
    /// for an external one such as modman itself.
    pub component: Option<String>,
}

/// An open admin session.
pub struct AdminSocket {
    path: PathBuf,
    stream: UnixStream,
    buffer: String,
}

impl AdminSocket {
    /// Connects and exchanges stream headers.
    pub async fn connect(path: &Path) -> Result<AdminSocket, AdminError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => AdminError::Missing(path.to_owned()),
                std::io::ErrorKind::PermissionDenied => AdminError::Denied(path.to_owned()),
                _ => AdminError::Io {
                    path: path.to_owned(),
                    reason: e.to_string(),
                },
            })?;
        let mut socket = AdminSocket {
            path: path.to_owned(),
            stream,
            buffer: String::new(),
        };
        socket.write(HEADER).await?;
        let header_end = socket
            .read_until(|buffer| {
                buffer
                    .find("<stream:stream")
                    .and_then(|at| buffer[at..].find('>').map(|end| at + end + 1))
            })
            .await?;
        socket.buffer.drain(..header_end);
        Ok(socket)
    }

    /// Runs one line of the admin console's Lua.
    pub async fn run(&mut self, command: &str) -> Result<Reply, AdminError> {
        let escaped = command
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        self.write(&format!("<repl-input>{escaped}</repl-input>"))
            .await?;
        let end = self
            .read_until(|buffer| {
                buffer
                    .find("</repl-result>")
                    .map(|at| at + "</repl-result>".len())
            })
            .await?;
        let fragment: String = self.buffer.drain(..end).collect();
        let wrapped: Element = format!("<reply xmlns='{NS}'>{fragment}</reply>")
            .parse()
            .map_err(|e| {
                AdminError::Protocol(format!(
                    "{e}: {}",
                    fragment.chars().take(200).collect::<String>()
                ))
            })?;
        let mut reply = Reply {
            ok: true,
            output: Vec::new(),
            result: String::new(),
        };
        for child in wrapped.children() {
            match child.name() {
                "repl-output" => reply.output.extend(child.text().lines().map(str::to_owned)),
                "repl-result" => {
                    reply.ok = child.attr("type") != Some("error");
                    reply.result = child.text();
                }
                _ => {}
            }
        }
        Ok(reply)
    }

    /// The hosts Prosody serves.
    pub async fn hosts(&mut self) -> Result<Vec<Host>, AdminError> {
        let reply = self.checked("host:list()").await?;
        Ok(reply
            .output
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .map(|line| match line.split_once(' ') {
                None => Host {
                    name: line.to_owned(),
                    component: None,
                },
                Some((name, kind)) => {
                    let kind = kind.trim_matches(|c| c == '(' || c == ')');
                    let module = kind.strip_suffix(" component").unwrap_or(kind);
                    Host {
                        name: name.to_owned(),
                        component: Some(module.to_owned()),
                    }
                }
            })
            .collect())
    }

    /// Prosody's version, such as `0.12.3`.
    pub async fn version(&mut self) -> Result<String, AdminError> {
        let reply = self.checked("server:version()").await?;
        Ok(reply
            .result
            .trim()
            .trim_start_matches("OK:")
            .trim()
            .to_owned())
    }

    /// The modules loaded on `host`.
    pub async fn loaded(&mut self, host: &str) -> Result<Vec<String>, AdminError> {
        let reply = self
            .checked(&format!("module:list({})", lua_string(host)))
            .await?;
        // The first line names the host; modules follow, indented.
        Ok(reply
            .output
            .iter()
            .filter(|l| l.starts_with(' ') || l.starts_with('\t'))
            .map(|l| l.trim().to_owned())
            .collect())
    }

    /// `module:load|unload|reload(module, host)`: `Ok(Err(text))` carries
    /// Prosody's own error when it refused.
    pub async fn module(
        &mut self,
        action: ModuleAction,
        module: &str,
        host: &str,
    ) -> Result<Result<(), String>, AdminError> {
        let verb = match action {
            ModuleAction::Load => "load",
            ModuleAction::Unload => "unload",
            ModuleAction::Reload => "reload",
        };
        let reply = self
            .run(&format!(
                "module:{verb}({}, {})",
                lua_string(module),
                lua_string(host)
            ))
            .await?;
        Ok(if reply.ok {
            Ok(())
        } else {
            Err(reply.error_text())
        })
    }

    async fn checked(&mut self, command: &str) -> Result<Reply, AdminError> {
        let reply = self.run(command).await?;
        if reply.ok {
            Ok(reply)
        } else {
            Err(AdminError::Protocol(format!(
                "`{command}` failed: {}",
                reply.error_text()
            )))
        }
    }

    async fn write(&mut self, text: &str) -> Result<(), AdminError> {
        let path = self.path.clone();
        tokio::time::timeout(TIMEOUT, self.stream.write_all(text.as_bytes()))
            .await
            .map_err(|_| AdminError::Timeout { path: path.clone() })?
            .map_err(|e| AdminError::Io {
                path,
                reason: e.to_string(),
            })
    }

    /// Reads until `done` finds the end of what is awaited in the buffer.
    async fn read_until(
        &mut self,
        done: impl Fn(&str) -> Option<usize>,
    ) -> Result<usize, AdminError> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = done(&self.buffer) {
                return Ok(end);
            }
            if self.buffer.len() > MAX_REPLY {
                return Err(AdminError::Protocol(format!(
                    "an answer larger than {MAX_REPLY} bytes"
                )));
            }
            let read = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
                .await
                .map_err(|_| AdminError::Timeout {
                    path: self.path.clone(),
                })?
                .map_err(|e| AdminError::Io {
                    path: self.path.clone(),
                    reason: e.to_string(),
                })?;
            if read == 0 {
                return Err(AdminError::Io {
                    path: self.path.clone(),
                    reason: "Prosody closed the connection".into(),
                });
            }
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    }
}

/// What to do with a module on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleAction {
    Load,
    Unload,
    Reload,
}

/// A Lua string literal for `text` (names are validated before they get
/// here; escaping keeps it safe regardless).
pub(super) fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_cannot_break_out() {
        assert_eq!(lua_string("localhost"), "\"localhost\"");
        assert_eq!(lua_string("a\"); os.exit(\""), "\"a\\\"); os.exit(\\\"\"");
        assert_eq!(lua_string("x\\\n"), "\"x\\\\\\n\"");
    }

    #[test]
    fn a_stack_trace_is_left_to_prosodys_log() {
        let reply = Reply {
            ok: false,
            output: vec![],
            result: "Error: Last error: mod_x.lua:12: oauth_client_id required\nstack traceback:\n\t[C]: in function 'error'".into(),
        };
        assert_eq!(
            reply.error_text(),
            "Error: Last error: mod_x.lua:12: oauth_client_id required"
        );
    }

    #[test]
    fn an_error_reply_keeps_prosodys_words_once() {
        let reply = Reply {
            ok: false,
            output: vec!["/x/mod_y.lua: No such file".into()],
            result: "Error: Last error: /x/mod_y.lua: No such file".into(),
        };
        assert_eq!(
            reply.error_text(),
            "Error: Last error: /x/mod_y.lua: No such file"
        );
    }
}
