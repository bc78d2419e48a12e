//! The daemon's side: listens on [`super::socket_path`], admits only the
//! state directory's owner and root (by the kernel's word on who
//! connected, `SO_PEERCRED`), reads one bounded request in bounded time,
//! runs it as every front end's requests run (checked fields, the actor
//! from the one gate, the component's admission, so a stop waits for it),
//! and answers with what the command line prints, then the verdicts of
//! the watches the change started. A command whose connection goes away
//! is carried out all the same: it was asked for, and a change is whole
//! or undone whoever waits for it.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    hands_over, socket_path, write_line, Answer, Frame, Moment, Request, MAX_REQUEST_BYTES,
};
use crate::access::Actor;
use crate::config::Config;
use crate::ops::{self, Context, Input};

/// How long a connection may take to send its request.
const REQUEST_WITHIN: Duration = Duration::from_secs(10);

/// Connections whose request is being read at once; more wait in the
/// socket's backlog.
const READING_AT_ONCE: usize = 64;

/// Lets a command handed over start as the component's requests start:
/// it holds what this returns until it has answered, so a stop waits for
/// it; refused, saying why, while modman stops or is full.
pub type Admit = Arc<dyn Fn() -> Result<OwnedSemaphorePermit, String> + Send + Sync>;

/// The daemon's socket.
pub struct Listener {
    socket: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Listens at the socket path of `config`, owner only. A socket an
    /// earlier run left is replaced; anything else found there is left
    /// alone, and the error says so.
    pub fn bind(config: &Config) -> Result<Listener, String> {
        let path = socket_path(config);
        let unserved = "the command line makes its changes itself meanwhile";
        match std::fs::symlink_metadata(&path) {
            Ok(found) if found.file_type().is_socket() => {
                std::fs::remove_file(&path).map_err(|e| {
                    format!("cannot remove the socket an earlier run left at {}: {e}; {unserved}", path.display())
                })?
            }
            Ok(_) => {
                return Err(format!(
                    "{} is not a socket, so it was left alone and modman does not listen there; {unserved}; move it away and restart modman",
                    path.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot look at {}: {e}; {unserved}", path.display())),
        }
        let socket = UnixListener::bind(&path)
            .map_err(|e| format!("cannot listen at {}: {e}; {unserved}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            format!(
                "cannot make {} its owner's only: {e}; {unserved}",
                path.display()
            )
        })?;
        Ok(Listener { socket, path })
    }

    /// Removes the socket when dropped: the daemon's exit never leaves it
    /// behind, even when the exit comes before [`serve`] saw the stop.
    pub fn unlink(&self) -> Unlink {
        Unlink(self.path.clone())
    }
}

/// The socket's removal, when dropped.
pub struct Unlink(PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves the commands handed over until `stopping` resolves, then
/// removes the socket: a command line started later makes its change
/// itself (after the stop's drain, since the change lock is held till
/// then).
pub async fn serve(
    listener: Listener,
    ctx: Context,
    admit: Admit,
    stopping: impl Future<Output = ()>,
) {
    let reading = Arc::new(Semaphore::new(READING_AT_ONCE));
    let mut stopping = std::pin::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            () = &mut stopping => break,
            accepted = async {
                let permit = reading.clone().acquire_owned().await;
                (permit, listener.socket.accept().await)
            } => accepted,
        };
        let (stream, reading) = match accepted {
            (Ok(permit), Ok((stream, _))) => (stream, permit),
            (_, Err(e)) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!("cannot accept a command from the shell: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            (Err(_), _) => break,
        };
        let (ctx, admit) = (ctx.clone(), admit.clone());
        tokio::spawn(async move {
            if let Err(e) = converse(stream, &ctx, &admit, reading).await {
                tracing::debug!("a command from the shell: {e}");
            }
        });
    }
    let _ = std::fs::remove_file(&listener.path);
}

/// One command: who, what, run, answer, verdicts.
async fn converse(
    stream: UnixStream,
    ctx: &Context,
    admit: &Admit,
    reading: OwnedSemaphorePermit,
) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let (reader, mut writer) = stream.into_split();
    let pid = peer
        .pid()
        .and_then(|pid| u32::try_from(pid).ok())
        .unwrap_or(0);
    let actor = match Actor::handed_over(&ctx.config, peer.uid(), pid) {
        Ok(actor) => actor,
        Err(refused) => return decline(&mut writer, refused.to_string()).await,
    };
    let request = tokio::time::timeout(REQUEST_WITHIN, read_request(reader)).await;
    drop(reading);
    let request = match request {
        Ok(Ok(request)) => request,
        Ok(Err(why)) => return decline(&mut writer, why).await,
        Err(_) => {
            let why = format!("no request within {} s", REQUEST_WITHIN.as_secs());
            return decline(&mut writer, why).await;
        }
    };
    if let Some(why) = request.mismatch(&ctx.config) {
        return decline(&mut writer, why).await;
    }
    let Some(op) = ops::find(&request.node).filter(|op| hands_over(op.spec().node)) else {
        let why = format!(
            "no operation `{}` is handed over",
            crate::clean::one_line(&request.node)
        );
        return decline(&mut writer, why).await;
    };
    let admitted = match admit() {
        Ok(admitted) => admitted,
        Err(why) => return decline(&mut writer, why).await,
    };
    write_line(&mut writer, &Frame::Taken).await?;
    tracing::debug!(
        "{actor} (PID {pid}) asks for {} from the shell",
        request.node
    );
    let fields = (request.fields.iter()).map(|(var, values)| (var.as_str(), values.clone()));
    let (answer, verdicts) = match Input::check(op.spec().params, fields) {
        Err(e) => (Answer::failed(e, request.json), None),
        Ok(input) => {
            let verdicts = ctx.watches.route(&actor);
            let result = op.run(ctx, &actor, &input).await;
            ctx.watches.unroute(&actor);
            let answer = Answer::of(
                &request.node,
                result,
                &input.consent,
                request.json,
                Moment::Any,
            );
            (answer, Some(verdicts))
        }
    };
    write_line(&mut writer, &Frame::Answer { answer }).await?;
    // Answered: a stop need not wait for the watches, which it ends.
    drop(admitted);
    if let Some(mut verdicts) = verdicts {
        while let Some(notice) = verdicts.recv().await {
            let verdict = (&notice).into();
            write_line(&mut writer, &Frame::Verdict { verdict }).await?;
        }
    }
    write_line(&mut writer, &Frame::Done).await
}

async fn decline(writer: &mut OwnedWriteHalf, why: String) -> std::io::Result<()> {
    tracing::debug!("a command from the shell was declined: {why}");
    write_line(writer, &Frame::Declined { why }).await
}

/// The request line, at most [`MAX_REQUEST_BYTES`].
async fn read_request(reader: OwnedReadHalf) -> Result<Request, String> {
    let mut line = Vec::new();
    BufReader::new(reader.take(MAX_REQUEST_BYTES + 1))
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if line.len() as u64 > MAX_REQUEST_BYTES {
        return Err(format!("a request of more than {MAX_REQUEST_BYTES} bytes"));
    }
    if line.last() != Some(&b'\n') {
        return Err("the request ended before its end of line".into());
    }
    serde_json::from_slice(&line).map_err(|e| format!("not a request: {e}"))
}
