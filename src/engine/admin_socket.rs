//! A client for Prosody's admin socket (`mod_admin_socket`, enabled with
//! `admin_shell`): the XML stream `prosodyctl shell` speaks, through which
//! modules are loaded and unloaded live, without a restart.
//!
//! The protocol, checked against Prosody 0.12.3 and 13.0.1: after both
//! stream headers, each `<repl-input>LUA</repl-input>` is answered by zero
//! or more `<repl-output>` lines and one `<repl-result>`, with
//! `type='error'` when it failed.
//!
//! What is loaded is read from Prosody's own listings, as printed by its
//! `mod_admin_shell`: `module:list(host)` puts a warn or error status after
//! a loaded module's name, global modules (`module:set_global()`) appear
//! only under `module:list("*")`.

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

pub use super::scope::Scope;

/// How serious a status a module reports is (`module:set_status()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusLevel {
    /// Prosody's own "Loaded".
    Core,
    Info,
    /// Loaded, but something needs the admin's attention.
    Warn,
    /// Loaded, but not doing its job (a missing option, an unreachable
    /// service): Prosody keeps it loaded.
    Error,
    /// A level this modman does not know, as Prosody printed it.
    Other(String),
}

impl StatusLevel {
    fn parse(word: &str) -> StatusLevel {
        match word {
            "core" => StatusLevel::Core,
            "info" => StatusLevel::Info,
            "warn" => StatusLevel::Warn,
            "error" => StatusLevel::Error,
            other => StatusLevel::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for StatusLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StatusLevel::Core => "core",
            StatusLevel::Info => "info",
            StatusLevel::Warn => "warn",
            StatusLevel::Error => "error",
            StatusLevel::Other(word) => word,
        })
    }
}

/// The status a loaded module reports, in Prosody's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStatus {
    pub level: StatusLevel,
    pub text: String,
}

impl std::fmt::Display for ModuleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.level, self.text)
    }
}

/// One module in a `module:list()` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModule {
    pub name: String,
    /// Only a warn or error status is listed; `None` means neither.
    pub status: Option<ModuleStatus>,
}

/// Reads `module:list(...)` output: a `Global:` or `HOST:` line, then the
/// host's modules indented, each maybe followed by ` (level: text)`.
/// What `module:list` printed: each scope it named, with its modules.
pub type Listed = Vec<(Scope, Vec<LoadedModule>)>;

fn parse_module_list(output: &[String]) -> Result<Listed, AdminError> {
    let mut scopes: Vec<(Scope, Vec<LoadedModule>)> = Vec::new();
    for line in output {
        if line.trim().is_empty() {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if !indented {
            let name = line.trim().strip_suffix(':').ok_or_else(|| {
                AdminError::Protocol(format!(
                    "module:list printed `{line}` where a host was expected"
                ))
            })?;
            let scope = match name {
                "Global" => Scope::Global,
                host => Scope::Host(host.to_owned()),
            };
            scopes.push((scope, Vec::new()));
            continue;
        }
        let Some((scope, modules)) = scopes.last_mut() else {
            return Err(AdminError::Protocol(format!(
                "module:list printed `{line}` before naming a host"
            )));
        };
        let entry = line.trim();
        match entry {
            "No modules loaded" => continue,
            "Host not found" => {
                return Err(AdminError::Protocol(format!(
                    "Prosody does not serve the host {scope:?}"
                )))
            }
            _ => {}
        }
        let (name, status) = match entry.split_once(" (") {
            None => (entry, None),
            Some((name, rest)) => {
                let inner = rest.strip_suffix(')').unwrap_or(rest);
                let status = match inner.split_once(": ") {
                    Some((level, text)) => ModuleStatus {
                        level: StatusLevel::parse(level),
                        text: text.to_owned(),
                    },
                    None => ModuleStatus {
                        level: StatusLevel::Other(String::new()),
                        text: inner.to_owned(),
                    },
                };
                (name, Some(status))
            }
        };
        if name.contains(char::is_whitespace) {
            return Err(AdminError::Protocol(format!(
                "module:list printed `{entry}`, which is no module name"
            )));
        }
        modules.push(LoadedModule {
            name: name.to_owned(),
            status,
        });
    }
    Ok(scopes)
}

/// What Prosody cannot change without a restart (a restart ends the
/// admin-socket connection, so one connection asks once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lasting {
    /// Prosody's version, such as `0.12.3`.
    pub version: String,
    /// The Lua version it runs on, such as `5.4` (what `--% lua:`
    /// headers name).
    pub lua: String,
    /// `core.features`: what it has built in.
    pub features: std::collections::BTreeSet<String>,
}

impl Lasting {
    /// Reads the lines [`AdminSocket::lasting`] prints, each a tag, a tab
    /// and a value: one `version`, one `lua` (`Lua N.M`), and a `feature`
    /// per feature.
    fn read(output: &[String]) -> Result<Lasting, AdminError> {
        let mut version = None;
        let mut lua = None;
        let mut features = std::collections::BTreeSet::new();
        for line in output.iter().filter(|l| !l.trim().is_empty()) {
            let unread = || AdminError::Protocol(format!("the server's facts printed `{line}`"));
            let (tag, value) = line.split_once('\t').ok_or_else(unread)?;
            let value = value.trim();
            match tag {
                "version" if version.is_none() => version = Some(value.to_owned()),
                "lua" if lua.is_none() => {
                    let number = value.strip_prefix("Lua ").ok_or_else(unread)?;
                    lua = Some(number.to_owned());
                }
                "feature" => {
                    features.insert(value.to_owned());
                }
                _ => return Err(unread()),
            }
        }
        match (version, lua) {
            (Some(version), Some(lua)) => Ok(Lasting {
                version,
                lua,
                features,
            }),
            _ => Err(AdminError::Protocol(format!(
                "the server's facts lack its version or its Lua: {}",
                output.join(" / ")
            ))),
        }
    }
}

/// The console command that lists the hosts.
const HOSTS: &str = "host:list()";

/// The raw Lua that prints what [`Lasting`] reads (see
/// [`AdminSocket::lasting`]).
const LASTING: &str =
    ">local f = package.loaded[\"prosody.core.features\"] or package.loaded[\"core.features\"]; \
     if not f then local ok; ok, f = pcall(require, \"prosody.core.features\"); \
     if not ok then f = require \"core.features\" end end; \
     print(\"version\", tostring(prosody.version or \"unknown\")); \
     print(\"lua\", _VERSION); \
     for name in f.available do print(\"feature\", name) end";

/// `reply` to `command`, or why it failed, as an error.
fn succeeded(command: &str, reply: Reply) -> Result<Reply, AdminError> {
    match reply.ok {
        true => Ok(reply),
        false => Err(AdminError::Protocol(format!(
            "`{command}` failed: {}",
            reply.error_text()
        ))),
    }
}

/// The hosts in `host:list()`'s answer: a VirtualHost by its name, a
/// component with its kind in parentheses.
fn hosts_listed(reply: &Reply) -> Vec<Host> {
    reply
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
        .collect()
}

/// An open admin session.
pub struct AdminSocket {
    path: PathBuf,
    stream: UnixStream,
    buffer: String,
    /// The first bytes of a character whose rest has not arrived yet: a
    /// read ends wherever the socket likes, also inside a character.
    partial: Vec<u8>,
    /// Prosody's stream header has not been read yet: it is read before
    /// the first answer, so the header and the first question share a
    /// round trip.
    header_pending: bool,
}

impl AdminSocket {
    /// Connects and sends the stream header; Prosody's is read with the
    /// first answer (Prosody reads a stream's header before anything in
    /// it, so a question sent at once is answered after it).
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
            partial: Vec::new(),
            header_pending: true,
        };
        socket.write(HEADER).await?;
        Ok(socket)
    }

    /// Whether the connection is still open with nothing unread: a peek
    /// that would block. Prosody closing it reads as its end (0 bytes),
    /// and anything unread means an answer this side never took.
    pub fn still_open(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut byte = 0u8;
        // SAFETY: a one-byte buffer that lives across the call, on a
        // descriptor this socket owns; MSG_PEEK leaves the byte unread.
        let peeked = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        peeked < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
    }

    /// Runs one line of the admin console's Lua.
    pub async fn run(&mut self, command: &str) -> Result<Reply, AdminError> {
        let mut replies = self.run_all(&[command]).await?;
        Ok(replies.remove(0))
    }

    /// Runs `commands` in one round trip: written at once, then their
    /// answers read in turn. Prosody handles a connection's questions one
    /// after the other and answers each when it is done, so answers come
    /// in the order asked, as long as none of `commands` answers later
    /// than it returns (on 13, a command whose result is a promise is
    /// answered when that settles): only console commands that answer at
    /// once, such as listings and plain Lua, go together.
    pub async fn run_all(&mut self, commands: &[&str]) -> Result<Vec<Reply>, AdminError> {
        let escaped = |command: &str| {
            command
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let asked = std::time::Instant::now();
        let inputs: String = (commands.iter())
            .map(|command| format!("<repl-input>{}</repl-input>", escaped(command)))
            .collect();
        self.write(&inputs).await?;
        if std::mem::take(&mut self.header_pending) {
            let header_end = self
                .read_until(|buffer| {
                    buffer
                        .find("<stream:stream")
                        .and_then(|at| buffer[at..].find('>').map(|end| at + end + 1))
                })
                .await?;
            self.buffer.drain(..header_end);
        }
        let mut replies = Vec::with_capacity(commands.len());
        for command in commands {
            replies.push(self.reply().await?);
            // Each round trip, for profiling a change (the command's
            // first line: never an option's value).
            tracing::debug!(
                "admin socket: {} answered in {:?}",
                command.lines().next().unwrap_or_default(),
                asked.elapsed()
            );
        }
        Ok(replies)
    }

    /// Reads the next answer.
    async fn reply(&mut self) -> Result<Reply, AdminError> {
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
        let reply = self.checked(HOSTS).await?;
        Ok(hosts_listed(&reply))
    }

    /// [`AdminSocket::hosts`] and [`AdminSocket::lasting`] in one round
    /// trip (both answer at once), as a new connection asks them.
    pub async fn hosts_and_lasting(&mut self) -> Result<(Vec<Host>, Lasting), AdminError> {
        let replies = self.run_all(&[HOSTS, LASTING]).await?;
        let mut checked = replies
            .into_iter()
            .zip([HOSTS, LASTING])
            .map(|(reply, command)| succeeded(command, reply));
        let (Some(hosts), Some(lasting)) = (checked.next(), checked.next()) else {
            unreachable!("run_all answers each of its two commands");
        };
        Ok((hosts_listed(&hosts?), Lasting::read(&lasting?.output)?))
    }

    /// `xmpp:ping(from, to, seconds)`: Prosody sends an XMPP ping from
    /// its host `from` to `to` over s2s and says `pong from ... in 0.012s`
    /// (Prosody 13 names the session too), or why not. The admin socket
    /// waits a little longer than `within`, so Prosody's own timeout
    /// answers first.
    pub async fn ping(
        &mut self,
        from: &str,
        to: &str,
        within: Duration,
    ) -> Result<Result<Duration, String>, AdminError> {
        let command = format!(
            "xmpp:ping({}, {}, {})",
            lua_string(from),
            lua_string(to),
            within.as_secs().max(1)
        );
        let reply = self.run(&command).await?;
        if !reply.ok {
            return Ok(Err(reply.error_text()));
        }
        let seconds = reply
            .result
            .split_whitespace()
            .last()
            .and_then(|last| last.strip_suffix('s'))
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0);
        Ok(seconds.map(Duration::from_secs_f64).ok_or_else(|| {
            format!(
                "Prosody's answer to the ping is not one modman reads: {}",
                crate::clean::one_line(&reply.result)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )
        }))
    }

    /// The modules loaded in `scope`, with the status Prosody lists.
    pub async fn loaded_with_status(
        &mut self,
        scope: Scope,
    ) -> Result<Vec<LoadedModule>, AdminError> {
        let argument = lua_string(scope.prosody_host());
        let reply = self.checked(&format!("module:list({argument})")).await?;
        let mut scopes = parse_module_list(&reply.output)?;
        match scopes.pop() {
            Some((listed, modules)) if listed == scope && scopes.is_empty() => Ok(modules),
            _ => Err(AdminError::Protocol(format!(
                "module:list({argument}) did not list exactly {scope:?}: {}",
                reply.output.join(" / ")
            ))),
        }
    }

    /// `module:list()`: the modules loaded globally and on every host
    /// Prosody serves (external components included), in one round trip.
    pub async fn loaded_everywhere(&mut self) -> Result<Listed, AdminError> {
        let reply = self.checked("module:list()").await?;
        parse_module_list(&reply.output)
    }

    /// What the running server cannot change without a restart, asked in
    /// one round trip of the console's raw Lua (`>`): its version (as
    /// `server:version()` says it), the Lua it runs on (`_VERSION`), and
    /// the features it declares (`core.features`, read by `--% requires:`
    /// and `--% conflicts:` module headers: on 13 it names the modules it
    /// took in from the community, mod_flags, mod_cloud_notify...; 0.12
    /// has only mod_bookmarks). Prosody's module manager has loaded
    /// `core.features` already, under 13's `prosody.` name or 0.12's, so
    /// it is taken from `package.loaded` before any `require` searches
    /// the Lua path for the other name.
    pub async fn lasting(&mut self) -> Result<Lasting, AdminError> {
        let reply = self.checked(LASTING).await?;
        Lasting::read(&reply.output)
    }

    /// The modules that must stay loaded on `host` (`*`: globally): those
    /// Prosody's config loads there (`modules_enabled` with the modules
    /// it always loads and a component's own), and those another loaded
    /// module depends on with `module:depends` (Prosody unloads a module
    /// whose dependency goes). Globally, also what the config loads on any
    /// host and every module loaded on one, since a module enabled on a
    /// host may run globally and a shared module's global instance serves
    /// its host instances. No console command says this, so it is asked
    /// in raw Lua.
    pub async fn needed(
        &mut self,
        host: &str,
    ) -> Result<std::collections::BTreeSet<String>, AdminError> {
        let command = format!(
            ">local ok, mm = pcall(require, \"prosody.core.modulemanager\"); \
             if not ok then mm = require \"core.modulemanager\" end; \
             local host, keep = {host}, {{}}; \
             local scopes = {{ host }}; \
             if host == \"*\" then for name in pairs(prosody.hosts) do scopes[#scopes + 1] = name end \
             else scopes[2] = \"*\" end; \
             for _, scope in ipairs(scopes) do \
               if scope == host or host == \"*\" then \
                 local wanted, component = mm.get_modules_for_host(scope); \
                 for name in wanted do keep[name] = true end; \
                 if component then keep[component] = true end \
               end; \
               for name, mod in pairs(mm.get_modules(scope) or {{}}) do \
                 if host == \"*\" and scope ~= host then keep[name] = true end; \
                 for dependency in pairs(mod.module.dependencies or {{}}) do keep[dependency] = true end \
               end \
             end; \
             for name in pairs(keep) do print(name) end",
            host = lua_string(host)
        );
        let reply = self.checked(&command).await?;
        Ok(reply
            .output
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
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
        succeeded(command, reply)
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
            decode_into(&mut self.buffer, &mut self.partial, &chunk[..read]);
        }
    }
}

/// Appends `bytes` to `text` as UTF-8, the stream decoded as a whole: a
/// character split across two reads is kept in `partial` until its rest
/// arrives, and only bytes that can never become a character turn into
/// U+FFFD. Decoding each read on its own would garble every non-ASCII
/// character that straddles a read boundary (a module's status, a path).
fn decode_into(text: &mut String, partial: &mut Vec<u8>, bytes: &[u8]) {
    partial.extend_from_slice(bytes);
    let mut rest = &partial[..];
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(bad) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[bad..];
                    }
                    // An incomplete character at the end: wait for the rest.
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let kept = rest.len();
    partial.drain(..partial.len() - kept);
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

    /// Open while the far end is and nothing waits unread; not once the
    /// far end wrote something never asked for, nor once it closed.
    #[tokio::test]
    async fn a_connection_is_still_open_until_its_far_end_writes_unasked_or_closes() {
        use tokio::io::AsyncWriteExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prosody.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        for far_end in ["writes", "closes"] {
            let socket = AdminSocket::connect(&path).await.unwrap();
            let (mut prosody, _) = listener.accept().await.unwrap();
            assert!(socket.still_open(), "{far_end}: idle");
            match far_end {
                "writes" => prosody.write_all(b"<").await.unwrap(),
                _ => drop(prosody),
            }
            let mut open = true;
            for _ in 0..100 {
                open = socket.still_open();
                if !open {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(!open, "{far_end}");
        }
    }

    #[test]
    fn the_lasting_facts_are_read_by_their_tags_and_each_is_required() {
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        let lasting = Lasting::read(&lines(
            "version\t13.0.1\nlua\tLua 5.4\nfeature\tmod_flags\nfeature\tloader\n",
        ))
        .unwrap();
        assert_eq!(
            lasting,
            Lasting {
                version: "13.0.1".into(),
                lua: "5.4".into(),
                features: ["loader", "mod_flags"].map(String::from).into(),
            }
        );
        for unread in [
            "lua\tLua 5.4",
            "version\t0.12.3",
            "version\t0.12.3\nlua\t5.4",
            "version\t0.12.3\nlua\tLua 5.4\nmod_bookmarks",
            "version\t0.12.3\nversion\t13.0.1\nlua\tLua 5.4",
            "version\t0.12.3\nlua\tLua 5.4\nflavour\tx",
        ] {
            assert!(
                matches!(Lasting::read(&lines(unread)), Err(AdminError::Protocol(_))),
                "{unread}"
            );
        }
    }

    #[test]
    fn a_character_split_across_reads_arrives_whole() {
        let whole = "<repl-result>ünïcode ✓ 🦀</repl-result>".as_bytes();
        for size in 1..=4 {
            let (mut text, mut partial) = (String::new(), Vec::new());
            for read in whole.chunks(size) {
                decode_into(&mut text, &mut partial, read);
            }
            assert_eq!(text.as_bytes(), whole, "reads of {size} bytes");
            assert!(partial.is_empty());
        }
    }

    #[test]
    fn bytes_that_are_never_a_character_become_one_replacement_each() {
        let (mut text, mut partial) = (String::new(), Vec::new());
        decode_into(&mut text, &mut partial, b"a\xffb\xe2\x9c");
        assert_eq!(text, "a\u{FFFD}b");
        assert_eq!(partial, b"\xe2\x9c");
        decode_into(&mut text, &mut partial, b"Xc");
        assert_eq!(text, "a\u{FFFD}b\u{FFFD}Xc");
        assert!(partial.is_empty());
    }

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

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn loaded(name: &str) -> LoadedModule {
        LoadedModule {
            name: name.into(),
            status: None,
        }
    }

    /// `module:list("localhost")` on Prosody 13.0.1 with dnsbl loaded
    /// without its option (captured from a real server).
    #[test]
    fn a_module_with_an_error_status_is_loaded_and_keeps_its_status() {
        let output = lines(
            "localhost:\n    admin_shell\n    c2s\n    dnsbl (error: No 'dnsbls' in config file)\n    external_services (warn: No services configured or all had errors)\n    version",
        );
        let scopes = parse_module_list(&output).unwrap();
        assert_eq!(scopes.len(), 1);
        let (scope, modules) = &scopes[0];
        assert_eq!(scope, &Scope::Host("localhost".into()));
        assert_eq!(
            modules,
            &vec![
                loaded("admin_shell"),
                loaded("c2s"),
                LoadedModule {
                    name: "dnsbl".into(),
                    status: Some(ModuleStatus {
                        level: StatusLevel::Error,
                        text: "No 'dnsbls' in config file".into(),
                    }),
                },
                LoadedModule {
                    name: "external_services".into(),
                    status: Some(ModuleStatus {
                        level: StatusLevel::Warn,
                        text: "No services configured or all had errors".into(),
                    }),
                },
                loaded("version"),
            ]
        );
        assert_eq!(
            modules[2].status.as_ref().unwrap().to_string(),
            "error: No 'dnsbls' in config file"
        );
    }

    /// `module:list()` on Prosody 0.12.3 with host_guard loaded: global
    /// modules are listed under `Global:` only.
    #[test]
    fn global_modules_are_listed_in_their_own_scope() {
        let output = lines(
            "Global:\n    admin_shell\n    admin_socket\n    host_guard\n    posix\nlocalhost:\n    c2s\n    external_services (warn: No services configured or all had errors)\nconference.localhost:\n    muc\nmodman.localhost:\n    No modules loaded",
        );
        let scopes = parse_module_list(&output).unwrap();
        let names = |i: usize| {
            scopes[i]
                .1
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(scopes[0].0, Scope::Global);
        assert_eq!(
            names(0),
            ["admin_shell", "admin_socket", "host_guard", "posix"]
        );
        assert_eq!(scopes[1].0, Scope::Host("localhost".into()));
        assert_eq!(names(1), ["c2s", "external_services"]);
        assert_eq!(names(2), ["muc"]);
        assert_eq!(scopes[3].0, Scope::Host("modman.localhost".into()));
        assert!(names(3).is_empty());
    }

    #[test]
    fn an_unknown_host_or_stray_line_is_an_error_not_a_module() {
        let unknown = parse_module_list(&lines("nonexist.example:\n    Host not found"));
        assert!(
            matches!(&unknown, Err(AdminError::Protocol(t)) if t.contains("nonexist.example")),
            "{unknown:?}"
        );
        assert!(parse_module_list(&lines("    c2s")).is_err());
        assert!(parse_module_list(&lines("localhost:\n    two words")).is_err());
    }
}
