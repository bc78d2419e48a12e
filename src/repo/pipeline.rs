//! HTTP/1.1 pipelining, for the many archives of one large change from a
//! plain `http://` repository: each connection is sent all its requests
//! at once and reads the answers in order, as apt's http method does.
//!
//! Why: one request at a time per connection waits a round trip per
//! archive. Over a network that is the whole cost (250 modules, four
//! connections, 50 ms away: 63 round trips, over three seconds); on
//! loopback it is CPU, a wakeup and a dispatch on both sides per request:
//! 250 archives took 14 ms of CPU through reqwest and 4 to 7 pipelined
//! here (client and server together, 2026-12-07).
//!
//! Only what a pipeline can read safely is taken from it: `HTTP/1.1 200`
//! with exactly the size the signed index gives and no other framing
//! (no chunks, no content coding). Anything else (a redirect, an error
//! status, a server that speaks HTTP/1.0 or closes the connection early)
//! leaves that request and the connection's later ones [`Answer::Again`],
//! for the caller to fetch one by one, where every case has its own
//! error. A body is read no larger than asked, and a header block no
//! larger than [`MAX_HEAD`], so a hostile server holds at most one
//! archive's bytes in memory per connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest header block read before a body.
pub const MAX_HEAD: usize = 16 * 1024;

/// Headers read per answer, at most.
const MAX_HEADERS: usize = 64;

/// How long connecting may take, as for one request at a time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One file to fetch: its URL (plain `http`) and the size the signed
/// index gives it.
pub struct Request {
    pub url: url::Url,
    pub size: u64,
}

/// What became of one request.
#[derive(Debug, PartialEq)]
pub enum Answer<R> {
    /// Its body, exactly the size asked, handed to the check.
    Checked(R),
    /// Not answered in a way a pipeline reads: fetch it on its own.
    Again,
    /// The server went silent or could not be reached in time: why.
    Failed(String),
}

/// Fetches `requests` over up to `connections` connections to the host
/// they share, each with its requests written at once. `check` gets each
/// body as it arrives, on the connection's task (so the work of checking
/// is spread over the runtime's threads). Each answer must arrive within
/// `timeout` of the one before. Answers are in the order of `requests`.
/// Dropping the future stops every connection.
pub async fn fetch<R: Send + 'static>(
    requests: Vec<Request>,
    connections: usize,
    timeout: Duration,
    user_agent: &str,
    check: Arc<dyn Fn(usize, Vec<u8>) -> R + Send + Sync>,
) -> Vec<Answer<R>> {
    let count = requests.len();
    let per_connection = count.div_ceil(connections.max(1)).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut requests = requests.into_iter().enumerate().peekable();
    while requests.peek().is_some() {
        let mine: Vec<(usize, Request)> = requests.by_ref().take(per_connection).collect();
        let check = check.clone();
        let user_agent = user_agent.to_owned();
        tasks.spawn(async move { one_connection(mine, timeout, &user_agent, &*check).await });
    }
    let mut answers: Vec<Answer<R>> = (0..count).map(|_| Answer::Again).collect();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(done) => {
                for (at, answer) in done {
                    answers[at] = answer;
                }
            }
            Err(stopped) if stopped.is_panic() => std::panic::resume_unwind(stopped.into_panic()),
            // Cancelled: only if this future is dropped, so never seen.
            Err(_) => {}
        }
    }
    answers
}

/// The requests of one connection, answered in order: each answer
/// [`Answer::Again`] from the first one the pipeline cannot read.
async fn one_connection<R>(
    mine: Vec<(usize, Request)>,
    timeout: Duration,
    user_agent: &str,
    check: &(dyn Fn(usize, Vec<u8>) -> R + Send + Sync),
) -> Vec<(usize, Answer<R>)> {
    let mut answers = Vec::with_capacity(mine.len());
    let stream = match connect(&mine[0].1.url).await {
        Ok(stream) => stream,
        Err(Connect::Again) => {
            return mine
                .into_iter()
                .map(|(at, _)| (at, Answer::Again))
                .collect();
        }
        Err(Connect::Failed(why)) => {
            return mine
                .into_iter()
                .map(|(at, _)| (at, Answer::Failed(why.clone())))
                .collect();
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut written = Vec::new();
    for (_, request) in &mine {
        written.extend_from_slice(request_bytes(&request.url, user_agent).as_bytes());
    }
    // Written beside the reading: a server may answer the first requests
    // before it reads the last, and neither side must wait on the other's
    // buffers. An error here shows as an answer missing below.
    let writing = async move {
        let _ = writer.write_all(&written).await;
        writer
    };
    let reading = async {
        // Bytes read from the connection and not used yet.
        let mut buffer = Vec::new();
        let mut requests = mine.into_iter();
        for (at, request) in requests.by_ref() {
            let read =
                tokio::time::timeout(timeout, read_answer(&mut reader, &mut buffer, request.size));
            match read.await {
                Ok(Read::Body(body, open)) => {
                    answers.push((at, Answer::Checked(check(at, body))));
                    if !open {
                        break;
                    }
                }
                Ok(Read::Unreadable) => {
                    answers.push((at, Answer::Again));
                    break;
                }
                Err(_) => {
                    let why = format!("no answer within {} s", timeout.as_secs_f64());
                    answers.push((at, Answer::Failed(why.clone())));
                    answers.extend(requests.map(|(at, _)| (at, Answer::Failed(why.clone()))));
                    return answers;
                }
            }
        }
        answers.extend(requests.map(|(at, _)| (at, Answer::Again)));
        answers
    };
    // The writer is kept until the reading ends: dropping it would close
    // our side while answers are still coming.
    let (_writer, answers) = tokio::join!(writing, reading);
    answers
}

/// Why a connection was not made.
enum Connect {
    /// Refused or unresolved: fetched one by one, each request meets it
    /// and says so.
    Again,
    /// Not made within [`CONNECT_TIMEOUT`]: final, rather than waiting as
    /// long again for each request.
    Failed(String),
}

async fn connect(url: &url::Url) -> Result<tokio::net::TcpStream, Connect> {
    let port = url.port_or_known_default().unwrap_or(80);
    let connecting = async {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            Some(url::Host::Ipv6(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            Some(url::Host::Domain(name)) => tokio::net::TcpStream::connect((name, port)).await,
            None => Err(std::io::ErrorKind::InvalidInput.into()),
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(_)) => Err(Connect::Again),
        Err(_) => Err(Connect::Failed(format!(
            "could not connect within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// `GET` of `url`, as reqwest sends it: no content coding asked for.
fn request_bytes(url: &url::Url, user_agent: &str) -> String {
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n\r\n"
    )
}

/// One answer read.
enum Read {
    /// Its body; whether the connection stays open after it.
    Body(Vec<u8>, bool),
    /// Not one a pipeline reads on from (see the module's documentation),
    /// or the connection closed.
    Unreadable,
}

/// Reads one answer whose body must be `size` bytes.
async fn read_answer(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buffer: &mut Vec<u8>,
    size: u64,
) -> Read {
    let (head_length, open) = loop {
        match parse_head(buffer, size) {
            Head::Complete { length, open } => break (length, open),
            Head::Unreadable => return Read::Unreadable,
            Head::Partial if buffer.len() >= MAX_HEAD => return Read::Unreadable,
            Head::Partial => {
                if !fill(reader, buffer, MAX_HEAD - buffer.len()).await {
                    return Read::Unreadable;
                }
            }
        }
    };
    // `size` is at most the largest archive accepted (checked before the
    // request), so this is bounded.
    let end = head_length + size as usize;
    while buffer.len() < end {
        if !fill(reader, buffer, end - buffer.len()).await {
            return Read::Unreadable;
        }
    }
    let rest = buffer.split_off(end);
    let mut answer = std::mem::replace(buffer, rest);
    answer.drain(..head_length);
    Read::Body(answer, open)
}

/// Reads at least one byte more, at most `wanted` (and at most 64 KiB),
/// into `buffer`. False if the connection ended or failed.
async fn fill(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buffer: &mut Vec<u8>,
    wanted: usize,
) -> bool {
    let wanted = wanted.clamp(1, 64 * 1024);
    let start = buffer.len();
    buffer.resize(start + wanted, 0);
    let read = reader.read(&mut buffer[start..]).await;
    let got = read.unwrap_or(0);
    buffer.truncate(start + got);
    got > 0
}

/// What the start of `bytes` holds.
#[derive(Debug, PartialEq)]
enum Head {
    /// A header block the pipeline reads on from, `length` bytes long,
    /// for a body of the size asked; whether the connection stays open.
    Complete { length: usize, open: bool },
    /// Not all of it yet.
    Partial,
    /// Anything else.
    Unreadable,
}

fn parse_head(bytes: &[u8], size: u64) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Unreadable,
    };
    if response.version != Some(1) || response.code != Some(200) {
        return Head::Unreadable;
    }
    let mut content_length = None;
    let mut open = true;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Twice, even alike, is a framing a pipeline does not guess at.
            if content_length.is_some() {
                return Head::Unreadable;
            }
            content_length = value.parse::<u64>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-encoding")
        {
            return Head::Unreadable;
        } else if name.eq_ignore_ascii_case("connection") {
            open &= !value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"));
        }
    }
    match content_length == Some(size) {
        true => Head::Complete { length, open },
        false => Head::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut answer =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(body);
        answer
    }

    fn body(n: usize) -> Vec<u8> {
        format!("archive {n:04}").into_bytes()
    }

    /// A server on 127.0.0.1 that reads requests' paths (`/N`) and writes
    /// what `answer(connection, n, nth on the connection)` returns (`None`:
    /// closes the connection); counts connections.
    async fn server(
        answer: impl Fn(usize, usize, usize) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> (url::Url, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let connection = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let (reader, mut writer) = stream.into_split();
                    let mut lines = tokio::io::BufReader::new(reader).lines();
                    let mut nth = 0;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let Some(path) = line.strip_prefix("GET /") else {
                            continue;
                        };
                        let n: usize = path.split(' ').next().unwrap().parse().unwrap();
                        match answer(connection, n, nth) {
                            Some(bytes) => writer.write_all(&bytes).await.unwrap(),
                            None => return,
                        }
                        nth += 1;
                    }
                });
            }
        });
        (base, connections)
    }

    fn requests(base: &url::Url, count: usize) -> Vec<Request> {
        (0..count)
            .map(|n| Request {
                url: base.join(&n.to_string()).unwrap(),
                size: body(n).len() as u64,
            })
            .collect()
    }

    async fn fetched(base: &url::Url, count: usize, timeout: Duration) -> Vec<Answer<Vec<u8>>> {
        let check = Arc::new(|_, body: Vec<u8>| body);
        fetch(requests(base, count), 4, timeout, "modman/test", check).await
    }

    #[tokio::test]
    async fn every_answer_comes_back_in_order_over_the_connections_asked() {
        let (base, connections) = server(|_, n, _| Some(ok(&body(n)))).await;
        let answers = fetched(&base, 50, Duration::from_secs(5)).await;
        let expected: Vec<_> = (0..50).map(|n| Answer::Checked(body(n))).collect();
        assert_eq!(answers, expected);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    /// Answers of every size, written in pieces that end anywhere (in a
    /// header, in a body, between two answers), each read whole and in
    /// order: what is read past one answer is the start of the next.
    #[tokio::test]
    async fn answers_split_anywhere_across_reads_are_each_read_whole() {
        let sizes = [1, 70_000, 13, 4096, 200_000, 2, 65_536, 999];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let bodies: Vec<Vec<u8>> = (0..sizes.len())
            .map(|n| (0..sizes[n]).map(|k| (k * 31 + n) as u8).collect())
            .collect();
        let all: Vec<u8> = bodies.iter().flat_map(|body| ok(body)).collect();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut at = 0;
            for piece in [3, 40, 70_001, 17, 1, 150_000].iter().cycle() {
                let to = (at + piece).min(all.len());
                stream.write_all(&all[at..to]).await.unwrap();
                stream.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                at = to;
                if at == all.len() {
                    break;
                }
            }
            // Open until the client is done: its requests read, not left
            // unread, whose close would reset the connection.
            let mut requests = [0; 4096];
            while matches!(stream.read(&mut requests).await, Ok(read) if read > 0) {}
        });
        let requests = (0..sizes.len())
            .map(|n| Request {
                url: base.join(&n.to_string()).unwrap(),
                size: sizes[n] as u64,
            })
            .collect();
        let check = Arc::new(|_, body: Vec<u8>| body);
        let answers = fetch(requests, 1, Duration::from_secs(5), "modman/test", check).await;
        assert_eq!(answers.len(), bodies.len());
        for (n, (answer, body)) in answers.iter().zip(&bodies).enumerate() {
            match answer {
                Answer::Checked(read) => assert!(read == body, "answer {n}: {} bytes", read.len()),
                other => panic!("answer {n}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn what_a_server_leaves_unanswered_is_fetched_again_and_nothing_is_taken_for_it() {
        // Closes each connection after three answers (a server's limit of
        // requests per connection); on one, says it will close after the
        // first; on another, answers HTTP/1.0.
        let (base, _) = server(|connection, n, nth| match (connection, nth) {
            (_, 3..) => None,
            (0, 0) => {
                let close = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    body(n).len()
                );
                Some([close.into_bytes(), body(n)].concat())
            }
            (1, _) => Some(
                [
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body(n).len()
                    )
                    .into_bytes(),
                    body(n),
                ]
                .concat(),
            ),
            _ => Some(ok(&body(n))),
        })
        .await;
        let answers = fetched(&base, 20, Duration::from_secs(5)).await;
        for (n, answer) in answers.iter().enumerate() {
            match answer {
                Answer::Checked(got) => assert_eq!(got, &body(n), "{n}"),
                Answer::Again => {}
                Answer::Failed(why) => panic!("{n}: {why}"),
            }
        }
        // Five a connection: which connection took which five depends on
        // the order they were accepted, so count rather than place.
        let taken = answers
            .iter()
            .filter(|a| matches!(a, Answer::Checked(_)))
            .count();
        assert_eq!(taken, 1 + 3 + 3, "{answers:?}");
    }

    #[tokio::test]
    async fn another_status_size_or_framing_is_not_read_as_a_body() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a redirect", b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n".to_vec()),
            ("an error", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
            ("a longer body", ok(b"archive 0000 and more")),
            ("no length", b"HTTP/1.1 200 OK\r\n\r\narchive 0000".to_vec()),
            ("two lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\narchive 0000".to_vec()),
            ("chunks", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\narchive 0000\r\n0\r\n\r\n".to_vec()),
            ("a content coding", b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\narchive 0000".to_vec()),
            ("no HTTP", b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
        ];
        for (what, answer) in cases {
            let (base, _) = server(move |_, _, _| Some(answer.clone())).await;
            let answers = fetched(&base, 1, Duration::from_secs(5)).await;
            assert_eq!(answers, vec![Answer::Again], "{what}");
        }
    }

    #[tokio::test]
    async fn a_header_block_without_end_is_given_up_at_its_limit() {
        let (base, _) = server(|_, _, _| {
            let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
            while endless.len() < 4 * MAX_HEAD {
                endless
                    .extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            }
            Some(endless)
        })
        .await;
        let answers = fetched(&base, 1, Duration::from_secs(5)).await;
        assert_eq!(answers, vec![Answer::Again]);
    }

    #[tokio::test]
    async fn a_silent_server_fails_every_request_once_after_the_timeout() {
        // Accepts, reads nothing, answers nothing, closes nothing.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let started = std::time::Instant::now();
        let answers = fetched(&base, 8, Duration::from_millis(200)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(answers.len(), 8);
        assert!(
            answers.iter().all(|a| matches!(a, Answer::Failed(_))),
            "{answers:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_leaves_each_request_to_be_fetched_on_its_own() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let answers = fetched(&base, 3, Duration::from_secs(5)).await;
        assert_eq!(answers, vec![Answer::Again, Answer::Again, Answer::Again]);
    }

    #[test]
    fn a_request_names_its_host_and_path_as_reqwest_does() {
        let url = url::Url::parse("http://127.0.0.1:8000/repo/archives/mod_a-1.tar.gz").unwrap();
        assert_eq!(
            request_bytes(&url, "modman/1"),
            "GET /repo/archives/mod_a-1.tar.gz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: modman/1\r\nAccept: */*\r\n\r\n"
        );
    }
}
