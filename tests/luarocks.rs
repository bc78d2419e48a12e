//! A LuaRocks server of the community repository's shape, built from
//! Debian's prosody-modules with the real `luarocks pack` and
//! `luarocks-admin make_manifest` (scripts/luarocks-server) and served by
//! Python on 127.0.0.1: as a `kind = "luarocks"` repository through the
//! real CLI, mirrored with `modman repo mirror`, and hostile.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use serde_json::Value;
use support::{cli, snapshot, wait_for};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/luarocks-server");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Static files served over HTTP on 127.0.0.1 by Python, as any web
/// server would serve a LuaRocks server.
struct Served {
    port: u16,
    child: Child,
}

impl Served {
    fn start(dir: &Path) -> Served {
        Served::run(
            &["-m", "http.server", "--bind", "127.0.0.1", "--directory"],
            dir,
        )
    }

    /// A server answering every GET with a redirect to `target`.
    fn redirecting(target: &str) -> Served {
        let script = format!(
            "import http.server, sys\n\
             class R(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       self.send_response(302)\n\
             \x20       self.send_header('Location', '{target}' + self.path)\n\
             \x20       self.end_headers()\n\
             http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), R).serve_forever()\n"
        );
        Served::run(&["-c", &script], Path::new("."))
    }

    fn run(args: &[&str], dir: &Path) -> Served {
        let port = free_port();
        let mut command = Command::new("/usr/bin/python3");
        command.args(args);
        if args.contains(&"--directory") {
            command.arg(dir);
        }
        let child = command
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the HTTP server", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Served { port, child }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The LuaRocks server scripts/luarocks-server builds, served.
struct RockServer {
    dir: tempfile::TempDir,
    served: Served,
}

impl RockServer {
    fn start() -> RockServer {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(SCRIPT)
            .arg(dir.path().join("server"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let served = Served::start(&dir.path().join("server/www"));
        RockServer { dir, served }
    }

    fn www(&self) -> PathBuf {
        self.dir.path().join("server/www")
    }

    /// Publishes another version of `module` (same source).
    fn publish(&self, module: &str, version: &str) {
        let output = Command::new(SCRIPT)
            .arg("--publish")
            .arg(self.dir.path().join("server"))
            .args([module, version])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    /// Changes a rock's bytes but not its name or version: a zip comment.
    fn tamper(&self, rock: &str) {
        let script = "import zipfile, sys\n\
                      with zipfile.ZipFile(sys.argv[1], 'a') as z: z.comment = b'changed'\n";
        let status = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(self.www().join(rock))
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// What `luarocks install` puts in a tree for `rock`, as modman lays it
    /// out: `share/lua/5.4/` with `mod_x/` stripped, the rock's copied
    /// directories, and the README from its `doc/`.
    fn installed_by_luarocks(&self, package: &str, version: &str) -> Vec<(String, Vec<u8>)> {
        let tree = self.dir.path().join(format!("tree-{package}"));
        let output = Command::new("luarocks")
            .args(["--lua-version=5.4", "--tree"])
            .arg(&tree)
            .args(["install", "--deps-mode=none"])
            .arg(self.www().join(format!("{package}-{version}.src.rock")))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let mut files = Vec::new();
        for (path, data) in snapshot(&tree.join("share/lua/5.4")) {
            let path = path.display().to_string();
            let path = match path.strip_prefix(&format!("{package}/")) {
                Some(inside) => inside.to_owned(),
                None => path,
            };
            files.push((path, data));
        }
        let rock_dir = tree.join(format!("lib/luarocks/rocks-5.4/{package}/{version}"));
        for (path, data) in snapshot(&rock_dir) {
            let path = path.display().to_string();
            if let Some(readme) = path.strip_prefix("doc/") {
                if readme.starts_with("README") {
                    files.push((readme.to_owned(), data));
                }
            } else if path.contains('/') {
                files.push((path, data));
            }
        }
        files.sort();
        files
    }
}

fn modman(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(args)
        .output()
        .unwrap()
}

/// A key pair in `dir`: (private key path, public key text).
fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("key");
    let output = modman(&["repo", "keygen", "--out", key.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    (key, text(&output.stdout).trim().to_owned())
}

fn mirror(from: &str, out: &Path, key: &Path) -> Output {
    modman(&[
        "repo",
        "mirror",
        "--from",
        from,
        "--out",
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--timeout-seconds",
        "5",
    ])
}

fn index(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap()
}

fn entry<'a>(index: &'a Value, name: &str) -> &'a Value {
    index["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {index}"))
}

/// The files of one module's archive in a signed repository.
fn archive_files(out: &Path, entry: &Value) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(out.join(entry["archive"].as_str().unwrap())).unwrap();
    let root = format!("mod_{}/", entry["name"].as_str().unwrap());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut files = Vec::new();
    for item in archive.entries().unwrap() {
        let mut item = item.unwrap();
        if item.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = item.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut item, &mut data).unwrap();
        files.push((path.strip_prefix(&root).unwrap().to_owned(), data));
    }
    files.sort();
    files
}

#[test]
fn a_mirror_verifies_carries_versions_and_dependencies_and_holds_the_rocks_files() {
    let server = RockServer::start();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let out = work.path().join("mirror");

    let started = Instant::now();
    let output = mirror(&server.served.url(), &out, &key);
    let first = started.elapsed();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    assert!(said.contains("mirrored 6 modules"), "{said}");
    assert!(said.contains("6 rocks fetched"), "{said}");
    // Not a terminal: no progress lines.
    assert_eq!(text(&output.stderr), "");
    eprintln!("mirror of 6 rocks: {first:?}");

    let output = modman(&[
        "repo",
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(output.status.success(), "{}", text(&output.stdout));

    let index = index(&out);
    let rtbl = entry(&index, "muc_rtbl");
    assert_eq!(rtbl["version"], "1-1");
    assert!(
        rtbl["dependencies"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "pubsub_subscription", "kind": "community"})),
        "{rtbl}"
    );
    let invites = entry(&index, "invites_page");
    assert!(
        invites["dependencies"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "register_apps", "kind": "community"})),
        "{invites}"
    );
    assert!(!invites["description"].as_str().unwrap().is_empty());

    // Byte for byte what `luarocks install` installs, for a plain module,
    // a library mapping and copied directories; and the README always
    // (LuaRocks installs it only when there are no copied directories).
    for module in ["bob", "lib_ldap", "invites_page", "muc_rtbl"] {
        let entry = entry(&index, module);
        let package = format!("mod_{module}");
        let not_readme = |(path, _): &(String, Vec<u8>)| path != "README.markdown";
        let mut expected = server.installed_by_luarocks(&package, "1-1");
        expected.retain(not_readme);
        let mut files = archive_files(&out, entry);
        assert!(files.iter().any(|(path, _)| path == "README.markdown"));
        files.retain(not_readme);
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            expected.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>()
        );
        assert!(
            files == expected,
            "{module}: other bytes than luarocks installs"
        );
    }
    assert!(archive_files(&out, entry(&index, "lib_ldap"))
        .iter()
        .any(|(path, _)| path == "ldap.lua"));

    // Incremental: nothing new, nothing fetched; a new revision, one rock.
    let output = mirror(&server.served.url(), &out, &key);
    assert!(
        text(&output.stdout).contains("0 rocks fetched"),
        "{}",
        text(&output.stdout)
    );
    server.publish("mod_bob", "2-1");
    let output = mirror(&server.served.url(), &out, &key);
    assert!(
        text(&output.stdout).contains("1 rocks fetched"),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_eq!(entry(&self::index(&out), "bob")["version"], "2-1");
    let output = modman(&[
        "repo",
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(output.status.success(), "{}", text(&output.stdout));

    // The same version with other bytes: refused, the mirror unchanged.
    let before = snapshot(&out);
    server.tamper("mod_bob-2-1.src.rock");
    std::fs::remove_file(mirror_cache(&out).join("mod_bob-2-1.src.rock")).unwrap();
    let output = mirror(&server.served.url(), &out, &key);
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(
        error.contains("mod_bob-2-1.src.rock: sha256")
            && error.contains("other bytes under the same name and version"),
        "{error}"
    );
    assert_eq!(snapshot(&out), before);
}

fn mirror_cache(out: &Path) -> PathBuf {
    out.with_file_name(format!(
        ".{}.rocks",
        out.file_name().unwrap().to_string_lossy()
    ))
}
