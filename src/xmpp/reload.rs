//! SIGHUP (`modman reload`, `systemctl reload modman`): modman.toml is
//! read and checked again, and applied by a restart in place.
//!
//! The running config is one value that every request in flight, the
//! engine and the stream share; swapping parts of it under them would let
//! one request see two configs. So a file that changed is applied whole,
//! by the way a start applies it: modman drains as for a stop (the
//! changes in flight finish and are answered; new requests are told it is
//! restarting), then `main` executes the same binary again with the same
//! arguments, in the same process, so systemd keeps tracking it. A file
//! that no longer loads changes nothing: modman runs on, and the log says
//! why (and that the next start would fail on it); a file that did not
//! change is only logged.

use std::path::PathBuf;
use std::sync::Arc;

use super::shutdown::Restarter;
use crate::config::{Config, Part};

/// `parts` by name, comma-separated, for the log.
pub fn names(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parts in which `new` differs from `running`.
pub fn changed(running: &Config, new: &Config) -> Vec<Part> {
    let (a, b) = (&running.component, &new.component);
    [
        (Part::Admins, running.admins != new.admins),
        (Part::StateDir, running.state_dir != new.state_dir),
        (
            Part::Component,
            a.jid != b.jid || a.server != b.server || a.secret != b.secret,
        ),
        (Part::Prosody, running.prosody != new.prosody),
        (Part::Repositories, running.repositories != new.repositories),
        (Part::Chat, running.chat != new.chat),
    ]
    .into_iter()
    .filter_map(|(part, differs)| differs.then_some(part))
    .collect()
}

/// Listens for SIGHUP from now on (its default would end modman), and
/// returns the task that reads `path` again at each and, when it changed,
/// asks `restart` for a restart in place. Call it within the runtime.
pub fn on_hangup(
    path: PathBuf,
    running: Arc<Config>,
    restart: Restarter,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(reread_at_each(hangups, path, running, restart))
}

async fn reread_at_each(
    mut hangups: tokio::signal::unix::Signal,
    path: PathBuf,
    running: Arc<Config>,
    restart: Restarter,
) {
    while hangups.recv().await.is_some() {
        match Config::load(&path) {
            Err(e) => tracing::error!(
                "reload: {} no longer loads: {e}; modman runs on with the config it started with, and would not start with this file: fix it before a restart",
                path.display()
            ),
            Ok(new) => match changed(&running, &new).as_slice() {
                [] => tracing::info!("reload: {} read again; nothing changed", path.display()),
                parts => {
                    let names = names(parts);
                    if restart.request(parts.to_vec()) {
                        tracing::info!(
                            "reload: {} changed in {names}; restarting in place to apply it once the requests in flight have ended (new requests are asked to try again in a moment)",
                            path.display()
                        );
                    } else {
                        tracing::warn!(
                            "reload: {} changed in {names}, but modman is already stopping or restarting; a restart reads it",
                            path.display()
                        );
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_changed_part_is_named_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let setup = crate::setup::plan(&crate::setup::tests::options(dir.path())).unwrap();
        let text = setup.modman_toml;
        let parse = |text: &str| Config::parse(text, dir.path()).unwrap();
        let running = parse(&text);
        assert_eq!(changed(&running, &parse(&text)), []);
        let admins = text.replace("admin@localhost", "root@localhost");
        assert_eq!(changed(&running, &parse(&admins)), [Part::Admins]);
        let both = admins.replace("https://modules.prosody.im/rocks/", "https://example.org/");
        assert_eq!(
            changed(&running, &parse(&both)),
            [Part::Admins, Part::Repositories]
        );
        let secret = text.replace(&setup.secret, "another-secret-long-enough-00000");
        assert_eq!(changed(&running, &parse(&secret)), [Part::Component]);
    }
}
