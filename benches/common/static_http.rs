//! A static file server over HTTP/1.1 for the benchmarks, on 127.0.0.1:
//! connections kept between requests, each reply written at once.
//!
//! The tests' repository is Python's `http.server`, which speaks HTTP/1.0:
//! a connection per file, and Python's own time per request (about 0.7 ms
//! here, one request at a time under its lock), so 250 archives cost it
//! more than `cp -r` of the files they hold. A repository in production is
//! a web server that keeps connections; this one stands in for it where a
//! bench compares modman's work with a copy of files (update all), so that
//! what is measured is modman's.
//!
//! Each file is read once and then served from memory while it stays the
//! same file (its inode, size and time, asked with one `stat` per
//! request), as a web server's open-file cache and the page cache serve
//! it: in production the repository is another machine, and here it
//! shares modman's two cores. Read from disk per request (open, stat,
//! two reads, close), it took 3.7 ms of their CPU per update of 250
//! modules (`perf record -a`, 2026-12-07).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Files served, by path: which file it was (device, inode, size,
/// modification time) and its bytes.
type Cache = Mutex<HashMap<PathBuf, ((u64, u64, u64, i64, i64), Arc<Vec<u8>>)>>;

/// Serves the files under `root` on 127.0.0.1:`port` until the process
/// ends, each connection on a thread of its own.
pub fn serve(root: PathBuf, port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    let cache: Arc<Cache> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (root, cache) = (root.clone(), cache.clone());
            std::thread::spawn(move || answer(&root, &cache, stream));
        }
    });
}

/// Answers the requests of one connection, until the client closes it or
/// asks for it to be closed.
fn answer(root: &Path, cache: &Cache, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if header.eq_ignore_ascii_case("connection: close") {
                close = true;
            }
        }
        let mut words = request_line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let body = (method == "GET")
            .then(|| file(root, cache, target))
            .flatten();
        let mut reply = match &body {
            Some(bytes) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            )
            .into_bytes(),
            None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        if let Some(body) = &body {
            reply.extend_from_slice(body);
        }
        if writer.write_all(&reply).is_err() || close {
            return;
        }
    }
}

/// The file `target` names under `root`, if it is one: no `..`, no
/// query. From `cache` while it is the same file.
fn file(root: &Path, cache: &Cache, target: &str) -> Option<Arc<Vec<u8>>> {
    use std::os::unix::fs::MetadataExt;
    let path = Path::new(target.split('?').next()?.trim_start_matches('/'));
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let path = root.join(path);
    let found = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
    let which = (
        found.dev(),
        found.ino(),
        found.len(),
        found.mtime(),
        found.mtime_nsec(),
    );
    let mut cache = cache.lock().unwrap();
    match cache.get(&path) {
        Some((cached, bytes)) if *cached == which => Some(bytes.clone()),
        _ => {
            let bytes = Arc::new(std::fs::read(&path).ok()?);
            cache.insert(path, (which, bytes.clone()));
            Some(bytes)
        }
    }
}
