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

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

/// Serves the files under `root` on 127.0.0.1:`port` until the process
/// ends, each connection on a thread of its own.
pub fn serve(root: PathBuf, port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || answer(&root, stream));
        }
    });
}

/// Answers the requests of one connection, until the client closes it or
/// asks for it to be closed.
fn answer(root: &Path, stream: TcpStream) {
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
        let body = (method == "GET").then(|| file(root, target)).flatten();
        let mut reply = match &body {
            Some(bytes) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            )
            .into_bytes(),
            None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        reply.extend(body.unwrap_or_default());
        if writer.write_all(&reply).is_err() || close {
            return;
        }
    }
}

/// The file `target` names under `root`, if it is one: no `..`, no
/// query.
fn file(root: &Path, target: &str) -> Option<Vec<u8>> {
    let path = Path::new(target.split('?').next()?.trim_start_matches('/'));
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    std::fs::read(root.join(path)).ok()
}
