//! The command line's side: hands a command to the daemon, if one that
//! may take it listens, and reads its answer and verdicts. What comes back
//! is treated as any outside input is: each line bounded, the daemon's
//! user checked (the state directory's owner, or root), and the text
//! cleaned of control characters before it reaches a terminal.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::{socket_path, write_line, Answer, Frame, Request, Verdict};
use crate::clean::clean_in_place;
use crate::config::Config;

/// The longest line read from the daemon: an answer as large as any
/// reply (a `list` of the largest index accepted) fits many times over.
const MAX_FRAME_BYTES: u64 = 256 * 1024 * 1024;

/// What became of a command offered to the daemon.
pub enum Handover {
    /// The daemon made it and answered; the health verdicts follow.
    Taken(Answer, Handed),
    /// Nothing was done: no daemon answers, and why. The command line
    /// makes the change itself, as it did before there was a daemon.
    Unanswered(String),
    /// Nothing was done: the daemon said why not (another modman.toml,
    /// a stop under way...), which an admin should hear. The command line
    /// makes the change itself.
    Declined(String),
}

/// A command the daemon carried out, for the verdicts of the health
/// watches its change started.
pub struct Handed {
    frames: BufReader<OwnedReadHalf>,
    /// Kept open: the daemon reads the end of the connection as the end
    /// of the command line.
    _writer: OwnedWriteHalf,
}

impl Handed {
    /// The next health verdict; none once the daemon said every watch
    /// ended, or went away.
    pub async fn verdict(&mut self) -> Option<Verdict> {
        match read_frame(&mut self.frames).await {
            Ok(Some(Frame::Verdict { mut verdict })) => {
                clean_in_place(&mut verdict.text);
                Some(verdict)
            }
            _ => None,
        }
    }
}

/// Offers `request` to the daemon serving `config`. An error only once
/// the daemon took the command and went away before answering: then the
/// change may have begun, and the message says how to find out.
pub async fn hand_over(config: &Config, request: &Request) -> Result<Handover, String> {
    let path = socket_path(config);
    let unanswered = |why: String| Ok(Handover::Unanswered(why));
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(e) => return unanswered(format!("no daemon answers at {}: {e}", path.display())),
    };
    if let Some(why) = stranger(config, &stream) {
        return Ok(Handover::Declined(why));
    }
    let (reader, mut writer) = stream.into_split();
    if let Err(e) = write_line(&mut writer, request).await {
        return unanswered(format!("the daemon did not take the command: {e}"));
    }
    let mut frames = BufReader::new(reader);
    match read_frame(&mut frames).await {
        Ok(Some(Frame::Taken)) => {}
        Ok(Some(Frame::Declined { mut why })) => {
            clean_in_place(&mut why);
            return Ok(Handover::Declined(why));
        }
        Ok(_) => {
            return unanswered("the daemon closed the connection without taking the command".into())
        }
        Err(e) => return unanswered(e),
    }
    match read_frame(&mut frames).await {
        Ok(Some(Frame::Answer { mut answer })) => {
            // JSON escapes every control character already.
            if !request.json {
                answer.stdout.iter_mut().for_each(|text| {
                    clean_in_place(text);
                });
            }
            answer.error.iter_mut().for_each(|text| {
                clean_in_place(text);
            });
            Ok(Handover::Taken(
                answer,
                Handed {
                    frames,
                    _writer: writer,
                },
            ))
        }
        answered => Err(format!(
            "modman's daemon took the command and then {}; a change it had begun is finished or undone by it (at its next start if it stopped): `modman history` shows how it ended",
            match answered {
                Ok(None) => "closed the connection before answering".to_owned(),
                Ok(Some(_)) => "answered out of turn".to_owned(),
                Err(e) => e,
            }
        )),
    }
}

/// Why the process listening is not one to hand a command to: it runs
/// as neither the state directory's owner nor root.
fn stranger(config: &Config, stream: &UnixStream) -> Option<String> {
    match stream.peer_cred() {
        Ok(peer) if crate::access::owner_or_root(config, peer.uid()).is_ok() => None,
        Ok(peer) => Some(format!(
            "the process listening at {} runs as uid {}, neither {}'s owner nor root",
            socket_path(config).display(),
            peer.uid(),
            config.state_dir.display()
        )),
        Err(e) => Some(format!(
            "cannot tell who listens at {}: {e}",
            socket_path(config).display()
        )),
    }
}

/// The next frame; none at the end of the connection.
async fn read_frame(frames: &mut BufReader<OwnedReadHalf>) -> Result<Option<Frame>, String> {
    let mut line = Vec::new();
    (&mut *frames)
        .take(MAX_FRAME_BYTES + 1)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the daemon's answer: {e}"))?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() as u64 > MAX_FRAME_BYTES || line.last() != Some(&b'\n') {
        return Err(format!(
            "the daemon's answer was cut short or longer than {MAX_FRAME_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| format!("the daemon's answer is not understood: {e}"))
}
