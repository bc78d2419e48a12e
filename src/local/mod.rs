//! The command line's way to the running daemon. `modman install` and the
//! other operations hand their command to the `modman run` that serves
//! the same modman.toml, over a Unix socket in its state directory, as
//! `snap` hands its to `snapd`: the daemon has the index loaded, the
//! admin socket open and the engine warm, so the change is made in a few
//! milliseconds, by the one process that makes every change, and logged
//! as the shell user's. Where no daemon answers, or it declines (another
//! modman.toml, another version, a stop under way), the command line
//! makes the change itself, as it always could.
//!
//! [`serve`] is the daemon's side, [`ask`] the command line's; both print
//! what [`Answer::of`] makes of an operation's result, so a command reads
//! and exits the same wherever it ran.
//!
//! The wire is one JSON object per line: the [`Request`], then
//! [`Frame`]s: taken (or declined), the answer, the health verdicts of
//! the watches the change started, and the end.

pub mod ask;
pub mod serve;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::fsutil::resolved;
use crate::ops::{self, OpError, Response};

/// The socket's name in the state directory.
const SOCKET: &str = "modman.sock";

/// The longest request line the daemon reads: a command line's fields,
/// each value at most [`crate::ops::Input`]'s limit.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// Where the daemon serving `config` listens.
pub fn socket_path(config: &Config) -> PathBuf {
    config.state_dir.join(SOCKET)
}

/// The operation that always runs where it is asked: `check`, which
/// looks at this host as a fresh start would (it runs before the daemon
/// starts, and tries the component's handshake itself).
const CHECK: &str = <ops::check::Check as ops::Command>::SPEC.node;

/// Whether the command line hands operation `node` to the daemon: all
/// but [`CHECK`].
pub fn hands_over(node: &str) -> bool {
    node != CHECK
}

/// A command handed to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// modman's version: a daemon of another declines, and the command
    /// line makes the change itself.
    pub version: String,
    /// The modman.toml the command line read, as an absolute path with
    /// symlinks resolved, and the SHA-256 of its bytes: the daemon
    /// takes the command only if it runs with that file, unchanged since
    /// it read it.
    pub config: PathBuf,
    pub config_sha256: [u8; 32],
    /// The operation.
    pub node: String,
    /// Its fields as a form carries them (`--yes` as `confirm`), checked
    /// by the daemon as every front end's are.
    pub fields: Vec<(String, Vec<String>)>,
    /// Whether the answer is printed as JSON.
    pub json: bool,
}

impl Request {
    /// The request for operation `node` with `fields`, under `config`;
    /// none if `config` was not read from a file.
    pub fn new(
        config: &Config,
        node: &str,
        fields: Vec<(&str, Vec<String>)>,
        json: bool,
    ) -> Option<Request> {
        Some(Request {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config: resolved(config.path.as_deref()?),
            config_sha256: config.sha256?,
            node: node.to_owned(),
            fields: fields
                .into_iter()
                .map(|(var, values)| (var.to_owned(), values))
                .collect(),
            json,
        })
    }

    /// Why a daemon running with `config` must not take this request;
    /// none if it may.
    fn mismatch(&self, config: &Config) -> Option<String> {
        if self.version != env!("CARGO_PKG_VERSION") {
            return Some(format!(
                "the daemon is modman {}, the command line {}",
                env!("CARGO_PKG_VERSION"),
                self.version
            ));
        }
        let same_file = config.path.as_deref().map(resolved).as_ref() == Some(&self.config);
        let same_bytes = config.sha256 == Some(self.config_sha256);
        match (same_file, same_bytes) {
            (true, true) => None,
            (false, _) => Some(format!(
                "the daemon runs with {}, not {}",
                config.path.as_deref().unwrap_or(Path::new("?")).display(),
                self.config.display()
            )),
            (true, false) => Some(format!(
                "{} changed since the daemon read it (`modman reload` applies it)",
                self.config.display()
            )),
        }
    }
}

/// What the daemon sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Frame {
    /// The command was not taken, and nothing was done: the command line
    /// makes the change itself. Why, for its debug log.
    Declined { why: String },
    /// The command was taken: from here on it is the daemon's to carry
    /// out, whatever becomes of the command line.
    Taken,
    /// The operation's answer.
    Answer { answer: Answer },
    /// A health watch's verdict.
    Verdict { verdict: Verdict },
    /// Every watch the change started has ended.
    Done,
}

/// What the command line prints for an operation and how it exits, the
/// same whether it ran the operation or the daemon did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// For stdout: the result, as text or as JSON.
    pub stdout: Option<String>,
    /// For stderr, as `error: ...`; the command failed.
    pub error: Option<String>,
    pub status: Status,
}

/// How the command exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Success,
    Failure,
}

/// When a `check` runs: at service start (systemd's `ExecStartPre`) a
/// repository that cannot be read does not fail it, since modman must
/// come up to manage what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    ServiceStart,
    Any,
}

impl Answer {
    /// The answer to operation `node`, whose input asked `consent`, from
    /// its result.
    pub fn of(
        node: &str,
        result: Result<Response, OpError>,
        consent: &ops::Consent,
        json: bool,
        moment: Moment,
    ) -> Answer {
        let response = match result {
            Ok(response) => {
                response.after_dry_run(consent, "run the same command without --dry-run")
            }
            Err(e) => return Answer::failed(e, json),
        };
        let stdout = Some(match json {
            true => response.to_json().to_string(),
            false => crate::text::render(&response),
        });
        let (error, status) = match &response {
            Response::Confirm(_) => (
                Some(
                    "nothing was changed; run the same command again with --yes to go ahead".into(),
                ),
                Status::Failure,
            ),
            Response::Table(table) if node == CHECK => (None, checks_passed(table, moment)),
            // A table with a failed row (a repository's refresh) is a
            // failed command.
            Response::Table(table) if table.failed() => (Some(table.note.clone()), Status::Failure),
            _ => (None, Status::Success),
        };
        Answer {
            stdout,
            error,
            status,
        }
    }

    /// The answer to an operation that failed with `e`: with --json its
    /// facts on stdout too; the text on stderr.
    pub fn failed(e: OpError, json: bool) -> Answer {
        Answer {
            stdout: json.then(|| e.to_json().to_string()),
            error: Some(e.to_string()),
            status: Status::Failure,
        }
    }
}

/// A table of checks with a failed row is a failed command; so is one
/// with a repository that cannot be read, except at service start, where
/// modman must come up without it (it manages what is installed, and
/// says what is missing in its log).
fn checks_passed(table: &ops::Table, moment: Moment) -> Status {
    let unavailable = table.has(ops::Outcome::Unavailable);
    if table.failed() || (unavailable && moment != Moment::ServiceStart) {
        return Status::Failure;
    }
    if unavailable {
        tracing::warn!(
            "starting without a repository that cannot be read now; the check above says what to do"
        );
    }
    Status::Success
}

/// A health verdict as the command line prints it (stderr) and counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub text: String,
    pub healthy: bool,
}

impl From<&ops::health::Notice> for Verdict {
    fn from(notice: &ops::health::Notice) -> Verdict {
        Verdict {
            text: notice.text.clone(),
            healthy: notice.facts["verdict"] == "healthy",
        }
    }
}

/// Writes `value` as one JSON line.
async fn write_line(
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    value: &impl Serialize,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    writer.write_all(&line).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::response::OUTCOME;
    use crate::ops::{Consent, Outcome, Table};

    fn table(outcome: Outcome) -> Response {
        Response::Table(Table {
            title: "Checks".into(),
            columns: vec![("check", "Check"), OUTCOME],
            rows: vec![vec!["repository local".into(), outcome.as_str().into()]],
            note: "one check".into(),
        })
    }

    fn status(node: &str, outcome: Outcome, moment: Moment) -> Status {
        Answer::of(node, Ok(table(outcome)), &Consent::NotAsked, true, moment).status
    }

    #[test]
    fn an_answer_exits_as_the_command_line_always_did() {
        // A failed row fails any command, saying the table's note.
        let refresh = Answer::of(
            "refresh",
            Ok(table(Outcome::Failed)),
            &Consent::NotAsked,
            false,
            Moment::Any,
        );
        assert_eq!(refresh.status, Status::Failure);
        assert_eq!(refresh.error.as_deref(), Some("one check"));
        // A repository that cannot be read fails a check, except at
        // service start; it is no failure of another command.
        assert_eq!(
            status(CHECK, Outcome::Unavailable, Moment::Any),
            Status::Failure
        );
        assert_eq!(
            status(CHECK, Outcome::Unavailable, Moment::ServiceStart),
            Status::Success
        );
        assert_eq!(
            status("refresh", Outcome::Unavailable, Moment::Any),
            Status::Success
        );
        assert_eq!(status(CHECK, Outcome::Ok, Moment::Any), Status::Success);
        // A failure: its facts on stdout with --json, its text as the error.
        let failed = Answer::failed(OpError::conflict("in the way"), true);
        let facts: serde_json::Value =
            serde_json::from_str(failed.stdout.as_deref().unwrap()).unwrap();
        assert_eq!(facts["error"], "conflict");
        assert_eq!(failed.status, Status::Failure);
        assert_eq!(
            Answer::failed(OpError::conflict("in the way"), false).stdout,
            None
        );
        // A dry run's table says how to go ahead, in the shell's words.
        let dry = Answer::of(
            "update",
            Ok(table(Outcome::Ok)),
            &Consent::DryRun,
            false,
            Moment::Any,
        );
        assert!(dry
            .stdout
            .unwrap()
            .ends_with("run the same command without --dry-run."));
    }

    #[test]
    fn a_daemon_takes_only_requests_made_under_its_own_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modman.toml");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("modman.example.toml"),
        )
        .unwrap();
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(&path).unwrap();
        let request = Request::new(
            &config,
            "install",
            vec![("modules", vec!["x".into()])],
            true,
        )
        .unwrap();
        assert_eq!(request.mismatch(&config), None);
        // Read through another spelling of the same file: the same.
        let spelled = Request {
            config: dir.path().join(".").join("modman.toml"),
            ..request.clone()
        };
        assert_eq!(resolved(&spelled.config), request.config);
        let other_version = Request {
            version: "0.0.1".into(),
            ..request.clone()
        };
        assert!(other_version.mismatch(&config).is_some());
        let other_file = Request {
            config: dir.path().join("other.toml"),
            ..request.clone()
        };
        assert!(other_file.mismatch(&config).is_some());
        // Edited since the daemon read it.
        std::fs::write(&path, format!("{text}\n# edited\n")).unwrap();
        let edited = Config::load(&path).unwrap();
        let after_edit = Request::new(
            &edited,
            "install",
            vec![("modules", vec!["x".into()])],
            true,
        )
        .unwrap();
        assert!(after_edit.mismatch(&config).is_some());
        // Parsed from text, a config names no file to compare.
        let unread = Config::parse(&text, dir.path()).unwrap();
        assert!(Request::new(&unread, "list", vec![], false).is_none());
        assert!(request.mismatch(&unread).is_some());
    }

    #[test]
    fn the_wire_refuses_what_it_does_not_declare() {
        let frames = [
            Frame::Declined { why: "no".into() },
            Frame::Taken,
            Frame::Answer {
                answer: Answer::failed(OpError::conflict("x"), false),
            },
            Frame::Verdict {
                verdict: Verdict {
                    text: "ok".into(),
                    healthy: true,
                },
            },
            Frame::Done,
        ];
        for frame in frames {
            let line = serde_json::to_string(&frame).unwrap();
            assert_eq!(serde_json::from_str::<Frame>(&line).unwrap(), frame);
        }
        let extra = r#"{"frame":"declined","why":"no","run":"anyway"}"#;
        assert!(serde_json::from_str::<Frame>(extra).is_err());
        assert!(serde_json::from_str::<Frame>(r#"{"frame":"elsewhere"}"#).is_err());
        let request = r#"{"version":"0.1.0","config":"/m.toml","config_sha256":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"node":"list","fields":[],"json":false}"#;
        assert!(serde_json::from_str::<Request>(request).is_ok());
        let extra = request.replace("\"json\":false", "\"json\":false,\"actor\":\"root\"");
        assert!(serde_json::from_str::<Request>(&extra).is_err());
        let short = request.replace(
            "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
            "0",
        );
        assert!(serde_json::from_str::<Request>(&short).is_err());
    }
}
