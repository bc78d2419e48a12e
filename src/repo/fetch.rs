//! Downloads from a repository, trusting nothing: the index's signature is
//! checked before it is parsed, every archive's size and SHA-256 against
//! the signed index before it is opened, bodies are capped while they
//! stream, and redirects may not leave the repository's host.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::{Repository, RepositoryKind};
use crate::repo::archive::{self, ArchiveFile, MAX_ARCHIVE};
use crate::repo::index::{Index, IndexError, ModuleEntry};
use crate::repo::signing;

/// Largest index accepted.
pub const MAX_INDEX: u64 = 32 * 1024 * 1024;
const MAX_SIGNATURE: u64 = 1024;

/// What went wrong with a download, naming the URL and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {reason}; is the repository up and the url in modman.toml right?")]
    Unreachable { url: String, reason: String },
    #[error("repository {expected}: the index it serves is signed for repository `{found}`, not `{expected}` as modman.toml names it; it was not used and nothing changed. Another repository's index (signed with the same key) is being served at this URL: check the url in modman.toml and what the server publishes there")]
    OtherRepository { expected: String, found: String },
    #[error("repository {expected}: the index it serves names no repository (it was built before `repo build --name`), so nothing tells it from another repository's index signed with the same key; it was not used and nothing changed. Rebuild it with `modman repo build --name {expected}` and publish it")]
    Unnamed { expected: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: larger than {limit} bytes; refused")]
    TooLarge { url: String, limit: u64 },
    #[error("repository {repository}: index.json.sig {reason}; the index was not used (is public_key, or one of public_keys, in modman.toml the repository's key?)")]
    Signature { repository: String, reason: String },
    #[error("repository {repository}: {reason}")]
    Index { repository: String, reason: String },
    #[error("{url}: {reason}; the archive was not used (the repository or something between may have been tampered with, or the index is stale: run refresh)")]
    Archive { url: String, reason: String },
    #[error("repository {repository}: its index has expired ({freshness}); nothing is installed or updated from it until refresh brings a fresh index (if refresh fails too, the repository must be rebuilt and published: modman repo build)")]
    Expired {
        repository: String,
        freshness: String,
    },
}

/// HTTP clients with modman's limits: one for plain `http://`
/// repositories, and one for `https://`, made at the first https
/// request.
///
/// Why two: the https client verifies certificates against the system's
/// roots, and reading them (some 150 files of /etc/ssl/certs, parsed) is
/// the largest part of a `modman install` from a local repository and
/// memory `modman run` would hold for nothing. A client for plain HTTP
/// trusts no root at all: it never verifies a certificate, and if a
/// redirect ever took it to https (the redirect policy keeps host and
/// port, so it cannot), the handshake would fail rather than go
/// unverified.
#[derive(Clone)]
pub struct Fetcher {
    /// For `http://` repositories; trusts no root.
    plain: reqwest::Client,
    /// For `https://` ones, once one was asked; shared by the clones.
    tls: Arc<OnceLock<reqwest::Client>>,
}

impl Default for Fetcher {
    fn default() -> Self {
        let plain = client()
            .tls_certs_only(std::iter::empty())
            .build()
            .unwrap_or_else(|e| unreachable!("a client trusting no root always builds: {e}"));
        Fetcher {
            plain,
            tls: Arc::default(),
        }
    }
}

/// What modman says it is to a repository.
const USER_AGENT: &str = concat!("modman/", env!("CARGO_PKG_VERSION"));

/// What both clients share: each request is bounded by its repository's
/// `timeout_seconds`, connecting gets at most 5 s of it, and redirects
/// stay on the repository's host and port.
fn client() -> reqwest::ClientBuilder {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let first = &attempt.previous()[0];
        let same_origin = attempt.url().host_str() == first.host_str()
            && attempt.url().port_or_known_default() == first.port_or_known_default();
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if !same_origin {
            let target = attempt.url().to_string();
            attempt.error(format!("redirect to another host ({target}) refused"))
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(redirects)
}

impl Fetcher {
    /// Downloads, verifies and parses a repository's index. Returns the
    /// exact bytes and signature too, for the cache.
    pub async fn index(
        &self,
        repository: &Repository,
    ) -> Result<(Vec<u8>, Vec<u8>, Index), FetchError> {
        let (bytes, signature) = self.index_bytes(repository).await?;
        let index = verify_index(repository, &bytes, &signature)?;
        Ok((bytes, signature, index))
    }

    /// Downloads a repository's index and its signature, bounded, for
    /// [`verify_index`] to check (a refresh parses it its own way).
    pub async fn index_bytes(
        &self,
        repository: &Repository,
    ) -> Result<(Vec<u8>, Vec<u8>), FetchError> {
        let bytes = self
            .get(repository, &url_of(repository, "index.json")?, MAX_INDEX)
            .await?;
        let signature = self
            .get(
                repository,
                &url_of(repository, "index.json.sig")?,
                MAX_SIGNATURE,
            )
            .await?;
        Ok((bytes, signature))
    }

    /// Downloads a module's archive and checks it against its signed entry;
    /// returns its files.
    pub async fn archive(
        &self,
        repository: &Repository,
        entry: &ModuleEntry,
    ) -> Result<Vec<ArchiveFile>, FetchError> {
        let url = url_of(repository, &entry.archive)?;
        if entry.size > MAX_ARCHIVE {
            return Err(FetchError::Archive {
                url,
                reason: format!(
                    "the index says {} bytes, more than modman accepts ({MAX_ARCHIVE})",
                    entry.size
                ),
            });
        }
        let bytes = self.get(repository, &url, entry.size).await?;
        verify_archive(repository, entry, &url, &bytes)
    }

    /// [`Fetcher::archive`] of each of `entries`, all from `repository`,
    /// in their order, or the first refusal in that order. Many from a
    /// plain `http://` repository are pipelined ([`pipeline`]); the
    /// others, and any the pipeline could not read, are fetched
    /// [`PARALLEL_DOWNLOADS`] at a time, each a task of its own (its
    /// archive hashed, inflated and checked on whichever thread is free),
    /// and a refusal stops those still in flight: a slow repository costs
    /// one timeout, not one per archive. Dropping the future stops every
    /// download.
    pub async fn archives(
        &self,
        repository: &Repository,
        entries: Vec<ModuleEntry>,
    ) -> Result<Vec<Vec<ArchiveFile>>, FetchError> {
        use futures::stream::StreamExt;
        let repository = Arc::new(repository.clone());
        let entries: Arc<[ModuleEntry]> = entries.into();
        let mut answers: Vec<Option<Vec<ArchiveFile>>> = (0..entries.len()).map(|_| None).collect();
        if pipelines(&repository, entries.len()) {
            for (at, answer) in pipelined(&repository, &entries)
                .await
                .into_iter()
                .enumerate()
            {
                answers[at] = answer.transpose()?;
            }
        }
        let again: Vec<usize> = (0..entries.len())
            .filter(|at| answers[*at].is_none())
            .collect();
        if again.len() < entries.len() {
            tracing::debug!(
                "{} archives pipelined, {} fetched one by one",
                entries.len() - again.len(),
                again.len()
            );
        }
        // Each a task once the stream polls it (no more than
        // PARALLEL_DOWNLOADS in flight), with its own handles on what it
        // fetches.
        let one_by_one: Vec<_> = again
            .iter()
            .map(|&at| {
                let fetcher = self.clone();
                let repository = repository.clone();
                let entries = entries.clone();
                async move {
                    let mut download = AbortOnDrop(tokio::spawn(async move {
                        fetcher.archive(&repository, &entries[at]).await
                    }));
                    match (&mut download.0).await {
                        Ok(fetched) => fetched,
                        Err(stopped) => std::panic::resume_unwind(stopped.into_panic()),
                    }
                }
            })
            .collect();
        let mut fetched = futures::stream::iter(one_by_one).buffered(PARALLEL_DOWNLOADS);
        for at in again {
            let answer = fetched.next().await;
            answers[at] = Some(answer.unwrap_or_else(|| unreachable!("one answer per archive"))?);
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| unreachable!("every archive was fetched")))
            .collect())
    }

    /// The https client, made now if this is the first https request: it
    /// reads the system's roots of trust (`SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` instead, where set). A failure is not kept, so
    /// roots installed meanwhile are read at the next request.
    fn tls(&self) -> Result<reqwest::Client, String> {
        if let Some(client) = self.tls.get() {
            return Ok(client.clone());
        }
        let client = client().build().map_err(|e| {
            format!("cannot set up TLS with the system's roots of trust ({}); is the ca-certificates package installed?", describe(&e))
        })?;
        Ok(self.tls.get_or_init(|| client).clone())
    }

    /// GETs `url` within the repository's timeout, refusing bodies over
    /// `limit` bytes as they stream.
    pub(crate) async fn get(
        &self,
        repository: &Repository,
        url: &str,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let unreachable = |e: reqwest::Error| FetchError::Unreachable {
            url: url.to_owned(),
            reason: describe(&e),
        };
        // `url` is under the repository's URL (see `url_of`), so its
        // scheme is the repository's.
        let client = match repository.url.scheme() == "https" {
            true => self.tls().map_err(|reason| FetchError::Unreachable {
                url: url.to_owned(),
                reason,
            })?,
            false => self.plain.clone(),
        };
        let request = client.get(url).timeout(repository.timeout);
        let mut response = request.send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Checks a downloaded archive against its signed entry (size, SHA-256,
/// the files it holds and where they go); returns its files.
fn verify_archive(
    repository: &Repository,
    entry: &ModuleEntry,
    url: &str,
    bytes: &[u8],
) -> Result<Vec<ArchiveFile>, FetchError> {
    let bad = |reason: String| FetchError::Archive {
        url: url.to_owned(),
        reason,
    };
    if bytes.len() as u64 != entry.size {
        return Err(bad(format!(
            "{} bytes, the signed index says {}",
            bytes.len(),
            entry.size
        )));
    }
    let sha256 = super::sha256_hex(bytes);
    if sha256 != entry.sha256 {
        return Err(bad(format!(
            "sha256 {sha256}, the signed index says {}",
            entry.sha256
        )));
    }
    let files = match repository.kind {
        RepositoryKind::Signed { .. } => {
            use crate::repo::placement::{self, Owner};
            let files = archive::read(bytes, &entry.name).map_err(|e| bad(e.to_string()))?;
            // A signed index may name a library (a mirrored library
            // rock): held to where a rock may place its files.
            let owner = match &entry.library {
                Some(library) => Owner::Library(library),
                None => Owner::Module(&entry.name),
            };
            let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            placement::check(owner, &paths, &|_| false).map_err(|e| bad(e.to_string()))?;
            files
        }
        RepositoryKind::LuaRocks => {
            use crate::repo::luarocks::rock::{self, Reading};
            // Whether its library takes the name of a module Prosody has
            // was checked when the catalog read this very rock (the
            // sha256 above): a rock refused then has no entry.
            rock::read(&entry.archive, bytes, Reading::Whole, &|_| false, &mut 0)
                .map_err(|e| bad(e.problem))?
                .files
        }
    };
    if !files
        .iter()
        .map(|f| f.path.as_str())
        .eq(entry.files.iter().map(String::as_str))
    {
        return Err(bad(
            "it holds other files than the signed index lists".into()
        ));
    }
    Ok(files)
}

/// Downloads in flight at once: enough to hide the round trips to a
/// repository, and fewer than the connections a minimal static server
/// holds before accepting them (Python's http.server: 5). With 8, its
/// backlog overflowed, and each connection it dropped waited a second to
/// try again: an update of 250 modules took 16 s instead of under one.
/// Pipelined, as many connections.
const PARALLEL_DOWNLOADS: usize = 4;

/// From this many archives from one plain `http://` repository on, they
/// are pipelined: fewer take no more round trips one by one.
const PIPELINE_FROM: usize = 2 * PARALLEL_DOWNLOADS;

/// A task stopped when the one waiting on it lets go: a refusal ends the
/// downloads still in flight, and a request given up its own.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether `count` archives from `repository` are pipelined: plain HTTP
/// straight to the server. Through a proxy set in the environment
/// (which reqwest honours) or with credentials in the URL, they are
/// fetched as reqwest fetches them.
fn pipelines(repository: &Repository, count: usize) -> bool {
    let proxied = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    count >= PIPELINE_FROM
        && repository.url.scheme() == "http"
        && repository.url.username().is_empty()
        && repository.url.password().is_none()
        && !proxied
}

/// Pipelines the archives of `entries` ([`pipeline::fetch`]): each
/// checked as it arrives, or `None` where it is to be fetched on its own.
async fn pipelined(
    repository: &Arc<Repository>,
    entries: &Arc<[ModuleEntry]>,
) -> Vec<Option<Result<Vec<ArchiveFile>, FetchError>>> {
    use super::pipeline::{self, Answer, Request};
    let mut answers: Vec<Option<Result<Vec<ArchiveFile>, FetchError>>> =
        (0..entries.len()).map(|_| None).collect();
    // An entry whose URL or size is refused is left to `archive`, which
    // says why.
    let (requests, at): (Vec<Request>, Vec<usize>) = entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.size <= MAX_ARCHIVE)
        .filter_map(|(at, entry)| {
            let url = url::Url::parse(&url_of(repository, &entry.archive).ok()?).ok()?;
            Some((
                Request {
                    url,
                    size: entry.size,
                },
                at,
            ))
        })
        .unzip();
    let urls: Vec<String> = requests.iter().map(|r| r.url.to_string()).collect();
    let check = {
        let (repository, entries, at, urls) = (
            repository.clone(),
            entries.clone(),
            at.clone(),
            urls.clone(),
        );
        Arc::new(move |k: usize, bytes: Vec<u8>| {
            verify_archive(&repository, &entries[at[k]], &urls[k], &bytes)
        })
    };
    let fetched = pipeline::fetch(
        requests,
        PARALLEL_DOWNLOADS,
        repository.timeout,
        USER_AGENT,
        check,
    )
    .await;
    for (k, answer) in fetched.into_iter().enumerate() {
        answers[at[k]] = match answer {
            Answer::Checked(checked) => Some(checked),
            Answer::Failed(reason) => Some(Err(FetchError::Unreachable {
                url: urls[k].clone(),
                reason,
            })),
            Answer::Again => None,
        };
    }
    answers
}

/// Checks the signature over the exact bytes, then parses, then checks
/// that the index is signed for this repository.
pub fn verify_index(
    repository: &Repository,
    bytes: &[u8],
    signature: &[u8],
) -> Result<Index, FetchError> {
    verify_signature(repository, bytes, signature)?;
    parse_signed(repository, bytes)
}

/// Checks the signature over the exact bytes against each of the
/// repository's keys; returns the key that verified it.
pub fn verify_signature<'a>(
    repository: &'a Repository,
    bytes: &[u8],
    signature: &[u8],
) -> Result<&'a ed25519_dalek::VerifyingKey, FetchError> {
    let RepositoryKind::Signed { public_keys } = &repository.kind else {
        return Err(not_signed(repository));
    };
    signing::verify_any(public_keys, bytes, signature).map_err(|e| FetchError::Signature {
        repository: repository.name.clone(),
        reason: match e {
            signing::KeyError::BadSignature(reason) => reason.to_owned(),
            other => other.to_string(),
        },
    })
}

/// Parses an index whose signature was checked, and checks that it is
/// signed for this repository.
pub fn parse_signed(repository: &Repository, bytes: &[u8]) -> Result<Index, FetchError> {
    if !matches!(repository.kind, RepositoryKind::Signed { .. }) {
        return Err(not_signed(repository));
    }
    // See `Index::repository` for why an index without a name is refused.
    let index = Index::parse(bytes).map_err(|e| match e {
        IndexError::Unnamed => FetchError::Unnamed {
            expected: repository.name.clone(),
        },
        e => FetchError::Index {
            repository: repository.name.clone(),
            reason: e.to_string(),
        },
    })?;
    if index.repository != repository.name {
        return Err(FetchError::OtherRepository {
            expected: repository.name.clone(),
            found: index.repository,
        });
    }
    Ok(index)
}

fn not_signed(repository: &Repository) -> FetchError {
    FetchError::Index {
        repository: repository.name.clone(),
        reason: "a LuaRocks server has no signed index.json".into(),
    }
}

/// `path` under the repository URL, which is treated as a directory.
/// Joined, not concatenated, and checked to stay under the base: the
/// index's paths are validated already, and this is the second lock.
pub(crate) fn url_of(repository: &Repository, path: &str) -> Result<String, FetchError> {
    let mut base = repository.url.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let outside = |reason: String| FetchError::Archive {
        url: format!("{base}{}", crate::clean::clean(path)),
        reason,
    };
    if !super::index::is_safe_url_path(path) {
        return Err(outside("not a plain relative path".into()));
    }
    let url = base
        .join(path)
        .map_err(|e| outside(format!("not a URL path ({e})")))?;
    if url.origin() != base.origin()
        || !url.path().starts_with(base.path())
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(outside(format!(
            "resolves to {url}, outside the repository {base}"
        )));
    }
    Ok(url.into())
}

/// reqwest's error with its causes, which hold the useful part
/// ("connection refused", "operation timed out").
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(url: &str) -> Repository {
        Repository {
            name: "r".into(),
            url: url::Url::parse(url).unwrap(),
            kind: RepositoryKind::Signed {
                public_keys: vec![],
            },
            timeout: Duration::from_secs(1),
        }
    }

    /// A server that takes each connection's first request and answers
    /// it after `delay` (never, if `None`) as HTTP/1.0 with bytes that
    /// match no signed hash, then closes; counts the requests it took.
    async fn unhelpful_server(
        delay: Option<Duration>,
    ) -> (url::Url, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = taken.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    if stream.read(&mut request).await.unwrap_or(0) == 0 {
                        return;
                    }
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(delay) = delay else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    tokio::time::sleep(delay).await;
                    let answer = b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nnope";
                    let _ = stream.write_all(answer).await;
                });
            }
        });
        (url, taken)
    }

    fn entries(count: usize) -> Vec<ModuleEntry> {
        (0..count)
            .map(|i| {
                let mut entry = crate::repo::index::tests::entry(&format!("m{i}"));
                entry.archive = format!("archives/m{i}.tar.gz");
                entry.size = 4;
                entry.sha256 = "a".repeat(64);
                entry
            })
            .collect()
    }

    #[tokio::test]
    async fn a_silent_repository_costs_one_timeout_not_one_per_archive() {
        let (url, _) = unhelpful_server(None).await;
        let mut silent = repository(url.as_str());
        silent.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let refused = Fetcher::default().archives(&silent, entries(24)).await;
        assert!(
            matches!(refused, Err(FetchError::Unreachable { .. })),
            "{refused:?}"
        );
        // 24 archives 4 at a time, each waiting its own timeout: 1.8 s.
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_refusal_stops_the_downloads_not_yet_asked_for() {
        let (url, taken) = unhelpful_server(Some(Duration::from_millis(20))).await;
        let refused = Fetcher::default()
            .archives(&repository(url.as_str()), entries(40))
            .await;
        assert!(
            matches!(refused, Err(FetchError::Archive { .. })),
            "{refused:?}"
        );
        // The pipeline's four connections (each answered in HTTP/1.0, so
        // left to be fetched one by one), then the first few one by one.
        let asked = taken.load(std::sync::atomic::Ordering::SeqCst);
        assert!(asked < 4 + 40 / 2, "{asked} requests taken");
    }

    #[test]
    fn urls_are_joined_under_the_base_and_never_leave_it() {
        let with_slash = repository("http://127.0.0.1:8000/repo/");
        let without = repository("http://127.0.0.1:8000/repo");
        for repository in [&with_slash, &without] {
            assert_eq!(
                url_of(repository, "archives/mod_a-1.tar.gz").unwrap(),
                "http://127.0.0.1:8000/repo/archives/mod_a-1.tar.gz"
            );
            for path in [
                "archives/%2e%2e/%2e%2e/x.tar.gz",
                "../x",
                "/x",
                "//evil.example/x",
                "archives/x?y",
                "archives/%2E%2e/x",
            ] {
                let error = url_of(repository, path).unwrap_err().to_string();
                assert!(
                    error.contains("the archive was not used"),
                    "{path}: {error}"
                );
            }
        }
    }

    #[test]
    fn an_index_signed_for_another_repository_or_for_none_is_refused() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut stable = repository("http://127.0.0.1:8000/");
        stable.name = "stable".into();
        stable.kind = RepositoryKind::Signed {
            public_keys: vec![key.verifying_key()],
        };
        let signed = |name: Option<&str>| {
            let index = Index {
                repository: name.unwrap_or_default().to_owned(),
                ..crate::repo::index::tests::index_of(vec![])
            };
            let mut json: serde_json::Value = serde_json::from_slice(&index.to_json()).unwrap();
            if name.is_none() {
                json.as_object_mut().unwrap().remove("repository");
            }
            let bytes = serde_json::to_vec(&json).unwrap();
            let signature = signing::sign(&key, &bytes);
            (bytes, signature)
        };
        let (bytes, signature) = signed(Some("stable"));
        let index = verify_index(&stable, &bytes, signature.as_bytes()).unwrap();
        assert_eq!(index.repository, "stable");
        // Validly signed by the same key, for the other repository.
        let (bytes, signature) = signed(Some("testing"));
        let error = verify_index(&stable, &bytes, signature.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, FetchError::OtherRepository { expected, found } if expected == "stable" && found == "testing"),
            "{error}"
        );
        let (bytes, signature) = signed(None);
        let error = verify_index(&stable, &bytes, signature.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, FetchError::Unnamed { expected } if expected == "stable"),
            "{error}"
        );
        assert!(
            error.to_string().contains("repo build --name stable"),
            "{error}"
        );
    }
}
