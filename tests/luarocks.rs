//! A LuaRocks server of the community repository's shape, built from
//! Debian's prosody-modules with the real `luarocks pack` and
//! `luarocks-admin make_manifest` (scripts/luarocks-server) and served by
//! Python on 127.0.0.1: as a `kind = "luarocks"` repository through the
//! real CLI, mirrored with `modman repo mirror`, and hostile.

#[path = "../benches/common/bloated_rocks.rs"]
mod bloated_rocks;
mod support;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use serde_json::json;
use serde_json::Value;
use support::{
    cli, json_output, json_rows, last, luarocks_section, refresh_row, rows_by, snapshot, wait_for,
    Client, Modman, Prosody, ADMIN, COMPONENT, DOMAIN,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/luarocks-server");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
        let port = support::free_port();
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

/// `repo mirror` of `from` into `out`, with `extra` arguments.
fn mirror(from: &str, out: &Path, key: &Path, extra: &[&str]) -> Output {
    let args = [
        "repo",
        "mirror",
        "--from",
        from,
        "--out",
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--name",
        "mirror",
        "--timeout-seconds",
        "5",
    ];
    modman(&[&args[..], extra].concat())
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
    let output = mirror(&server.served.url(), &out, &key, &["--json"]);
    let first = started.elapsed();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = json_output(&text(&output.stdout));
    assert_eq!((&said["modules"], &said["fetched"]), (&json!(6), &json!(6)));
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
        // A library: LuaRocks' `ldap.lua` is `ldap.lib.lua` in modman's
        // `ldap/`, where Prosody's module:require looks for it.
        if let Some(library) = entry["library"].as_str() {
            for (path, _) in expected.iter_mut() {
                let inside = path.strip_prefix(&format!("{library}/")).unwrap_or(path);
                *path = inside.replace(".lua", ".lib.lua");
            }
            expected.sort();
        }
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
    // A library rock: its library where Prosody's module:require finds it.
    assert_eq!(entry(&index, "lib_ldap")["library"], "ldap");
    assert!(archive_files(&out, entry(&index, "lib_ldap"))
        .iter()
        .any(|(path, _)| path == "ldap.lib.lua"));

    // What luarocks (as `prosodyctl install` runs it) installed, read back.
    let tree = server.dir.path().join("tree-mod_lib_ldap");
    let installed = modman::repo::luarocks::installed::read(&tree).unwrap();
    assert_eq!(installed.len(), 1);
    assert_eq!(
        (installed[0].name.as_str(), installed[0].version.to_string()),
        ("lib_ldap", "1-1".to_owned())
    );
    assert_eq!(installed[0].paths[0], tree.join("share/lua/5.4/ldap.lua"));
    assert!(installed[0].paths.iter().all(|p| p.exists()));

    // Incremental: nothing new, nothing fetched; a new revision, one rock.
    let fetched = || {
        let output = mirror(&server.served.url(), &out, &key, &["--json"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        json_output(&text(&output.stdout))["fetched"].clone()
    };
    assert_eq!(fetched(), 0);
    server.publish("mod_bob", "2-1");
    assert_eq!(fetched(), 1);
    // The earlier version the server lists is mirrored too, packed and
    // verified as the newest is: the very archive of the first run.
    let mirrored = self::index(&out);
    let bob = entry(&mirrored, "bob");
    assert_eq!(bob["version"], "2-1");
    let earlier = &bob["previous"][0];
    assert_eq!(earlier["version"], "1-1", "{bob}");
    assert_eq!(earlier["sha256"], entry(&index, "bob")["sha256"], "{bob}");
    assert_eq!(
        archive_files(&out, &json!({"name": "bob", "archive": earlier["archive"]})),
        archive_files(&out, bob)
    );
    let output = modman(&[
        "repo",
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    // --keep 0: the newest only.
    let output = mirror(&server.served.url(), &out, &key, &["--keep", "0"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(entry(&self::index(&out), "bob")["previous"], Value::Null);

    // The same version with other bytes: refused, the mirror unchanged.
    let before = snapshot(&out);
    server.tamper("mod_bob-2-1.src.rock");
    std::fs::remove_file(mirror_cache(&out).join("mod_bob-2-1.src.rock")).unwrap();
    let output = mirror(&server.served.url(), &out, &key, &[]);
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

/// A modman host without Prosody, configured with one LuaRocks server.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(url: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        let d = dir.path().display();
        let config = format!(
            "admins = [\"admin@localhost\"]\nstate_dir = \"{d}/state\"\n[component]\njid = \"modman.localhost\"\nserver = \"127.0.0.1:1\"\nsecret = \"x\"\n\
             [prosody]\nconfig = \"{d}/prosody.cfg.lua\"\nmodules_dir = \"{d}/modules\"\nmanaged_config = \"{d}/modman.cfg.lua\"\nadmin_socket = \"{d}/prosody.sock\"\n\
             [[repositories]]\nname = \"community\"\nurl = \"{url}\"\nkind = \"luarocks\"\ntimeout_seconds = 5\n"
        );
        std::fs::write(dir.path().join("modman.toml"), config).unwrap();
        Host { dir }
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        cli(args, &self.dir.path().join("modman.toml"))
    }

    fn modules(&self) -> PathBuf {
        self.dir.path().join("modules")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// What an install could change: the modules and what modman recorded.
    fn everything(
        &self,
    ) -> (
        std::collections::BTreeMap<PathBuf, Vec<u8>>,
        Option<Vec<u8>>,
    ) {
        (
            snapshot(&self.modules()),
            std::fs::read(self.state().join("installed.json")).ok(),
        )
    }
}

#[test]
fn a_luarocks_server_serves_list_install_and_update_and_a_changed_rock_is_refused() {
    let server = RockServer::start();
    // An earlier version beside the newest.
    server.publish("mod_bob", "2-1");
    let host = Host::new(&server.served.url());
    let (ok, out, err) = host.run(&["refresh"]);
    assert!(ok, "{out}{err}");
    // A refresh downloads each module's newest rock only: one per package.
    let rocks = host.state().join("rocks/community");
    let cached = || -> BTreeSet<String> {
        std::fs::read_dir(&rocks)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let packages: BTreeSet<String> = (cached().iter())
        .filter_map(|f| f.strip_suffix(".src.rock")?.rsplitn(3, '-').nth(2))
        .map(str::to_owned)
        .collect();
    assert_eq!(packages.len(), cached().len(), "{:?}", cached());
    assert!(rocks.join("mod_bob-2-1.src.rock").is_file());
    assert!(!rocks.join("mod_bob-1-1.src.rock").exists());
    // The earlier version is on offer all the same, and chosen, it is
    // downloaded, pinned and installed.
    let (_, out, _) = host.run(&["info", "bob", "--json"]);
    assert_eq!(json_output(&out)["fields"]["versions"], "2-1, 1-1", "{out}");
    let (ok, out, err) = host.run(&["install", "--yes", "bob@1-1", "--json"]);
    assert!(ok, "{out}{err}");
    assert_eq!(json_rows(&out, "module")["bob"]["version"], "1-1", "{out}");
    assert!(rocks.join("mod_bob-1-1.src.rock").is_file());
    let pins: Value =
        serde_json::from_slice(&std::fs::read(host.state().join("rocks-pins.json")).unwrap())
            .unwrap();
    let bob_1 = format!("{}mod_bob-1-1.src.rock", server.served.url());
    assert!(pins.to_string().contains(&bob_1), "{pins}");
    // Updated, then back to the listed version by name.
    let installed = |host: &Host, module: &str| -> Value {
        let installed: Value =
            serde_json::from_slice(&std::fs::read(host.state().join("installed.json")).unwrap())
                .unwrap();
        installed["modules"][module]["version"].clone()
    };
    let bob = |host: &Host| installed(host, "bob");
    let (ok, out, err) = host.run(&["update", "--yes", "bob"]);
    assert!(ok, "{out}{err}");
    assert_eq!(bob(&host), "2-1");
    let (ok, out, err) = host.run(&["update", "--yes", "bob@1-1"]);
    assert!(ok, "{out}{err}");
    assert_eq!(bob(&host), "1-1");
    let (ok, out, err) = host.run(&["remove", "--yes", "bob"]);
    assert!(ok, "{out}{err}");
    let (_, out, _) = host.run(&["list", "--show", "available", "--json"]);
    let available = json_rows(&out, "module");
    for module in ["bob", "muc_rtbl", "lib_ldap", "invites_page"] {
        assert!(available.contains_key(module), "{module} not in {out}");
    }
    assert_eq!(available["muc_rtbl"]["available"], "1-1", "{out}");

    // A rockspec dependency comes along.
    let (ok, out, err) = host.run(&["install", "--yes", "muc_rtbl"]);
    assert!(ok, "{out}{err}");
    for (module, file) in [
        ("muc_rtbl", "mod_muc_rtbl.lua"),
        ("pubsub_subscription", "mod_pubsub_subscription.lua"),
    ] {
        let installed = std::fs::read(host.modules().join(format!("mod_{module}/{file}"))).unwrap();
        let debian =
            std::fs::read(format!("/usr/lib/prosody/modules/mod_{module}/{file}")).unwrap();
        assert!(installed == debian, "{module}: other bytes than the rock's");
    }
    // A library rock, in the directory named after its library, where
    // another module's `module:require "ldap"` finds it.
    let (ok, out, err) = host.run(&["install", "--yes", "lib_ldap"]);
    assert!(ok, "{out}{err}");
    assert!(
        std::fs::read(host.modules().join("ldap/ldap.lib.lua")).unwrap()
            == std::fs::read("/usr/lib/prosody/modules/ldap.lib.lua").unwrap()
    );
    assert!(!host.modules().join("mod_lib_ldap").exists());

    // A higher revision is an update.
    server.publish("mod_muc_rtbl", "2-1");
    let (ok, out, err) = host.run(&["refresh"]);
    assert!(ok, "{out}{err}");
    let (_, out, _) = host.run(&["list", "--show", "updates", "--json"]);
    let updates = json_rows(&out, "module");
    assert_eq!(updates["muc_rtbl"]["available"], "2-1", "{out}");
    assert_eq!(updates["muc_rtbl"]["update"], "yes", "{out}");
    let (ok, out, err) = host.run(&["update", "--yes", "muc_rtbl"]);
    assert!(ok, "{out}{err}");
    let version = |host: &Host| installed(host, "muc_rtbl");
    assert_eq!(version(&host), "2-1");
    // Rollback puts 1-1 back; remove takes it away.
    let (ok, out, err) = host.run(&["rollback", "--yes", "muc_rtbl"]);
    assert!(ok, "{out}{err}");
    assert_eq!(version(&host), "1-1");
    let (ok, out, err) = host.run(&["remove", "--yes", "muc_rtbl"]);
    assert!(ok, "{out}{err}");
    assert_eq!(version(&host), Value::Null);
    assert!(!host.modules().join("mod_muc_rtbl").exists());
    // The manifest's earlier versions are on offer too.
    let (_, out, _) = host.run(&["info", "muc_rtbl", "--json"]);
    assert_eq!(json_output(&out)["fields"]["versions"], "2-1, 1-1", "{out}");
    let (ok, out, err) = host.run(&["install", "--yes", "muc_rtbl@1-1"]);
    assert!(ok, "{out}{err}");
    assert_eq!(version(&host), "1-1");
    let (ok, out, err) = host.run(&["update", "--yes", "muc_rtbl"]);
    assert!(ok, "{out}{err}");
    assert_eq!(version(&host), "2-1");

    // Other bytes under a version already seen: refresh refuses the
    // server and keeps the last good catalog; install refuses the rock.
    let before = host.everything();
    server.tamper("mod_muc_rtbl-2-1.src.rock");
    std::fs::remove_file(
        host.state()
            .join("rocks/community/mod_muc_rtbl-2-1.src.rock"),
    )
    .unwrap();
    let (_, out, err) = host.run(&["refresh", "--json"]);
    let community = &json_rows(&out, "repository")["community"];
    assert_eq!(community["outcome"], "failed", "{out}{err}");
    // The last good catalog stays in use.
    assert_ne!(community["modules"], "", "{out}{err}");
    assert_eq!(community["cause"], "pin_changed", "{out}");
    server.tamper("mod_bob-2-1.src.rock");
    let (ok, out, err) = host.run(&["install", "--yes", "bob", "--json"]);
    assert!(!ok && err.contains("mod_bob-2-1.src.rock"), "{err}");
    assert_eq!(json_output(&out)["outcome"], "nothing_changed", "{out}");
    assert!(
        host.everything() == before,
        "a refused rock changed something"
    );
}

/// `repo mirror`'s exit status when it published the mirror without
/// some modules.
const LEFT_OUT: i32 = 3;

/// A hand-made rock: (package, version, the .src.rock's bytes).
type HandMade<'a> = (&'a str, &'a str, Vec<u8>);

/// A LuaRocks server of hand-made rocks.
fn hostile_server(rocks: &[HandMade]) -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = String::from("commands = {}\nmodules = {}\nrepository = {\n");
    for (package, version, bytes) in rocks {
        std::fs::write(
            dir.path().join(format!("{package}-{version}.src.rock")),
            bytes,
        )
        .unwrap();
        manifest +=
            &format!("   {package} = {{ [\"{version}\"] = {{ {{ arch = \"src\" }} }} }},\n");
    }
    manifest += "}\n";
    std::fs::write(dir.path().join("manifest"), manifest).unwrap();
    let served = Served::start(dir.path());
    (dir, served)
}

/// A tar.gz with raw entry names (`tar` itself refuses `..`).
fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut writer, data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A generated-style rockspec; `extra` is appended as more Lua.
fn rockspec(package: &str, dir: &str, modules: &str, dependencies: &str, extra: &str) -> String {
    format!(
        "package = \"{package}\"\nversion = \"1-1\"\n\
         source = {{\n   url = \"http://127.0.0.1:1/archive/abc.tar.gz/{package}\",\n   dir = \"{dir}\",\n   file = \"prosody-modules-abc.tar.gz\"\n}}\n\
         description = {{ summary = \"{package}\" }}\n\
         dependencies = {{ \"lua >= 5.1\", {dependencies} }}\n\
         build = {{ type = \"builtin\", modules = {{ {modules} }} }}\n{extra}"
    )
}

/// A well-formed rock of `package` with this rockspec text.
fn rock(package: &str, spec: &str) -> Vec<u8> {
    let source = tar_gz(&[(
        &format!("Community-Modules-abc/{package}/{package}.lua"),
        b"module:log('info', 'hello')",
    )]);
    zip_of(&[
        (&format!("{package}-1-1.rockspec"), spec.as_bytes()),
        ("prosody-modules-abc.tar.gz", &source),
    ])
}

fn plain(package: &str, dependencies: &str, extra: &str) -> Vec<u8> {
    let spec = rockspec(
        package,
        &format!("Community-Modules-abc/{package}"),
        &format!("{package} = \"{package}.lua\""),
        dependencies,
        extra,
    );
    rock(package, &spec)
}

#[test]
fn hostile_rocks_are_refused_naming_the_module_and_file_and_left_out() {
    let work = tempfile::tempdir().unwrap();
    let (key, _) = keygen(work.path());
    let huge = format!("x = \"{}\"\n", "a".repeat(70_000));
    // 70 MiB outside the module's directory: skipped, but counted.
    let zeros = bloated_rocks::Zeros::new(70 * 1024 * 1024 + 1024);
    let deep = format!("x = {}{}\n", "{".repeat(40), "}".repeat(40));
    let cases: Vec<(Vec<HandMade>, &str)> = vec![
        (
            vec![("mod_a", "1-1", plain("mod_a", "", "os.execute(\"touch /tmp/pwned\")\n"))],
            "mod_a-1-1.src.rock: mod_a-1-1.rockspec, line 11, column 3: an assignment into a field of `os`",
        ),
        (
            vec![("mod_a", "1-1", plain("mod_a", "", "for i = 1, 10 do end\n"))],
            "mod_a-1-1.rockspec, line 11, column 1: a loop (`for`)",
        ),
        (
            vec![("mod_a", "1-1", plain("mod_a", "", "x = string.rep('a', 1e9)\n"))],
            "mod_a-1-1.rockspec, line 11, column 5: a variable (`string`)",
        ),
        (
            vec![("mod_a", "1-1", plain("mod_a", "", &huge))],
            "mod_a-1-1.rockspec, line 11, column 5: a string longer than",
        ),
        (
            vec![("mod_a", "1-1", plain("mod_a", "", &deep))],
            "mod_a-1-1.rockspec, line 11, column 21: tables nested deeper than 16",
        ),
        (
            vec![(
                "mod_a",
                "1-1",
                rock(
                    "mod_a",
                    &rockspec("mod_a", "Community-Modules-abc", "mod_a = \"mod_a/mod_a.lua\"", "", ""),
                ),
            )],
            "mod_a-1-1.rockspec: `source.dir` `Community-Modules-abc` is outside the module",
        ),
        (
            vec![(
                "mod_a",
                "1-1",
                rock(
                    "mod_a",
                    &rockspec("mod_a", "Community-Modules-abc/mod_a", "mod_a = \"../mod_b/mod_b.lua\"", "", ""),
                ),
            )],
            "mod_a-1-1.rockspec: build.modules[\"mod_a\"] = \"../mod_b/mod_b.lua\" points outside the module",
        ),
        (
            vec![("mod_a", "1-1", bloated_rocks::rock_zeros_outside("mod_a", &zeros))],
            "mod_a-1-1.src.rock: prosody-modules-abc.tar.gz: the archive unpacks to more than 64 MiB",
        ),
        (
            vec![("mod_a", "1-1", b"<html>not found</html>".to_vec())],
            "mod_a-1-1.src.rock: not a readable zip",
        ),
        (
            vec![(
                "mod_a",
                "1-1",
                zip_of(&[("../../mod_a-1-1.rockspec", b"package = \"mod_a\"")]),
            )],
            "mod_a-1-1.src.rock: entry `../../mod_a-1-1.rockspec` is not a plain relative path",
        ),
        (
            vec![(
                "mod_a",
                "1-1",
                zip_of(&[
                    (
                        "mod_a-1-1.rockspec",
                        rockspec("mod_a", "Community-Modules-abc/mod_a", "mod_a = \"mod_a.lua\"", "", "").as_bytes(),
                    ),
                    (
                        "prosody-modules-abc.tar.gz",
                        &tar_gz(&[("Community-Modules-abc/mod_a/../../../etc/cron.d/x", b"x")]),
                    ),
                ]),
            )],
            "mod_a-1-1.src.rock: prosody-modules-abc.tar.gz: entry `Community-Modules-abc/mod_a/../../../etc/cron.d/x` is not a plain relative path",
        ),
        (
            vec![
                ("mod_a", "1-1", plain("mod_a", "\"mod_b\"", "")),
                ("mod_b", "1-1", plain("mod_b", "\"mod_a >= 1\"", "")),
            ],
            "mod_a-1-1.rockspec: dependency cycle mod_a -> mod_b -> mod_a",
        ),
        (
            vec![("mod_a", "1-1", plain("mod_a", "\"mod_nowhere\"", ""))],
            "mod_a-1-1.rockspec: depends on mod_nowhere, which the server does not have",
        ),
        (
            vec![
                ("mod_a", "1-1", plain("mod_a", "\"mod_b >= 12\"", "")),
                ("mod_b", "1-1", plain("mod_b", "", "")),
            ],
            "mod_a-1-1.rockspec: depends on a version of mod_b the server does not have (its newest is 1-1)",
        ),
    ];
    for (i, (rocks, expected)) in cases.into_iter().enumerate() {
        let (_dir, served) = hostile_server(&rocks);
        let out = work.path().join(format!("mirror-{i}"));
        let output = mirror(&served.url(), &out, &key, &[]);
        let printed = text(&output.stdout);
        // Published without the module, which is named with why.
        assert_eq!(
            output.status.code(),
            Some(LEFT_OUT),
            "{expected}: {printed}"
        );
        assert!(
            printed.contains(expected),
            "{expected:?} not in {printed:?}"
        );
        let mirrored = index(&out);
        let names: Vec<&str> = mirrored["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"a"), "{expected}: mirrored {names:?}");
        // The same server as a repository: the module is not on offer.
        let host = Host::new(&served.url());
        host.run(&["refresh"]);
        let (ok, out, _) = host.run(&["install", "--yes", "a", "--json"]);
        assert!(!ok);
        assert_eq!(json_output(&out)["error"], "not_found", "{expected}: {out}");
        assert!(snapshot(&host.modules()).is_empty());
    }
    assert!(!Path::new("/tmp/pwned").exists());

    // A manifest that is code.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest"),
        "repository = dofile('/etc/passwd')\n",
    )
    .unwrap();
    let served = Served::start(dir.path());
    let out = work.path().join("mirror-manifest");
    let output = mirror(&served.url(), &out, &key, &[]);
    let error = text(&output.stderr);
    assert!(
        error.contains(&format!(
            "{}manifest, line 1, column 14: a function call (`dofile...`)",
            served.url()
        )),
        "{error}"
    );
    assert!(!out.exists());
}

#[test]
fn only_the_configured_server_over_https_or_loopback() {
    let work = tempfile::tempdir().unwrap();
    let (key, _) = keygen(work.path());
    let out = work.path().join("mirror");

    // Plain HTTP elsewhere: refused before connecting (this address would
    // not answer at all).
    let started = Instant::now();
    let output = mirror("http://192.0.2.1/rocks/", &out, &key, &[]);
    assert!(started.elapsed().as_secs() < 3);
    let error = text(&output.stderr);
    assert!(
        !output.status.success() && error.contains("plain HTTP to another machine"),
        "{error}"
    );
    assert!(!out.exists());
    // The same in modman.toml: the config is refused with the key named.
    let host = Host::new("http://192.0.2.1/rocks/");
    let (ok, _, err) = host.run(&["list"]);
    assert!(
        !ok && err.contains("repositories[0].url") && err.contains("plain HTTP to another machine"),
        "{err}"
    );

    // A redirect to another host (127.0.0.2 is this machine, but not the
    // configured server).
    let server = RockServer::start();
    let redirect = Served::redirecting(&format!("http://127.0.0.2:{}", server.served.port));
    let output = mirror(&redirect.url(), &out, &key, &[]);
    let error = text(&output.stderr);
    assert!(
        !output.status.success() && error.contains("redirect to another host"),
        "{error}"
    );
    assert!(!out.exists());
    let host = Host::new(&redirect.url());
    let (_, said, err) = host.run(&["refresh", "--json"]);
    assert_eq!(
        json_rows(&said, "repository")["community"]["cause"],
        "unreachable",
        "{said}{err}"
    );
    assert!(snapshot(&host.modules()).is_empty());
}

/// The version of `module` in modman's installed.json, if any.
fn installed_version(prosody: &Prosody, module: &str) -> Value {
    let installed: Value = serde_json::from_slice(
        &std::fs::read(prosody.path("modman-state/installed.json")).unwrap(),
    )
    .unwrap();
    installed["modules"][module]["version"].clone()
}

/// A library rock (no module of its own, like mod_lib_ldap) and a module
/// that loads it with `module:require`: the module loads in Prosody with
/// the library modman installed, the library cannot be enabled, and
/// removing both leaves nothing.
#[test]
fn a_module_loads_the_library_rock_it_depends_on() {
    let library = {
        let source = tar_gz(&[
            (
                "Community-Modules-abc/mod_lib_greet/greet.lib.lua",
                b"return { hello = function() return 'modman-greeting' end }",
            ),
            (
                "Community-Modules-abc/mod_lib_greet/extra.lib.lua",
                b"return { number = 42 }",
            ),
        ]);
        let spec = rockspec(
            "mod_lib_greet",
            "Community-Modules-abc/mod_lib_greet",
            "greet = \"greet.lib.lua\", [\"greet.extra\"] = \"extra.lib.lua\"",
            "",
            "",
        );
        zip_of(&[
            ("mod_lib_greet-1-1.rockspec", spec.as_bytes()),
            ("prosody-modules-abc.tar.gz", &source),
        ])
    };
    let user = {
        let source = tar_gz(&[(
            "Community-Modules-abc/mod_greeter/mod_greeter.lua",
            b"local greet = module:require 'greet'\n\
              local extra = module:require 'greet/extra'\n\
              module:log('info', '%s %d', greet.hello(), extra.number)\n",
        )]);
        let spec = rockspec(
            "mod_greeter",
            "Community-Modules-abc/mod_greeter",
            "mod_greeter = \"mod_greeter.lua\"",
            "\"mod_lib_greet\"",
            "",
        );
        zip_of(&[
            ("mod_greeter-1-1.rockspec", spec.as_bytes()),
            ("prosody-modules-abc.tar.gz", &source),
        ])
    };
    let (_dir, served) = hostile_server(&[
        ("mod_lib_greet", "1-1", library),
        ("mod_greeter", "1-1", user),
    ]);
    let prosody = Prosody::start();
    let config = prosody.path("modman.toml");
    std::fs::write(
        &config,
        prosody.modman_config() + &luarocks_section(&served.url()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let (ok, out, err) = cli(args, &config);
        assert!(ok, "{args:?}: {out}{err}");
        out
    };
    run(&["refresh"]);
    let modules = prosody.modules_dir();

    // Its directory taken by something modman did not put there: refused,
    // naming the directory, and nothing installed.
    std::fs::create_dir(modules.join("greet")).unwrap();
    std::fs::write(modules.join("greet/mine.lua"), "-- the admin's").unwrap();
    let before = snapshot(&modules);
    let (ok, _, err) = cli(&["install", "--yes", "--enable", "greeter"], &config);
    assert!(
        !ok && err.contains("the directory `greet/` (for the library lib_greet)"),
        "{err}"
    );
    assert_eq!(snapshot(&modules), before);
    std::fs::remove_dir_all(modules.join("greet")).unwrap();

    run(&["install", "--yes", "--enable", "greeter"]);
    assert!(modules.join("greet/greet.lib.lua").is_file());
    assert!(modules.join("greet/extra.lib.lua").is_file());
    assert!(prosody
        .loaded_modules(DOMAIN)
        .contains(&"greeter".to_owned()));
    assert!(
        prosody.log().contains("modman-greeting 42"),
        "mod_greeter found both parts of the library"
    );

    // A library is not a module: nothing to enable, and it says why.
    let (ok, _, err) = cli(&["enable", "--yes", "lib_greet"], &config);
    assert!(!ok && err.contains("Lua library `greet`"), "{err}");
    // info says what it is.
    let info = run(&["info", "lib_greet"]);
    assert!(
        info.contains("a Lua library that other modules load with module:require \"greet\""),
        "{info}"
    );

    run(&["remove", "--yes", "greeter", "lib_greet"]);
    assert!(!modules.join("greet").exists());
    assert!(!modules.join("mod_greeter").exists());
    assert!(!prosody
        .loaded_modules(DOMAIN)
        .contains(&"greeter".to_owned()));
}

/// The whole life of LuaRocks modules over XMPP, as an admin lives it:
/// each step checked against what Prosody itself says is loaded.
#[test]
fn over_xmpp_a_luarocks_module_is_installed_loaded_updated_rolled_back_and_removed() {
    let server = RockServer::start();
    let prosody = Prosody::start();
    let _modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &luarocks_section(&server.served.url())),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    assert_eq!(refresh_row(&mut admin, "community")["outcome"], "ok");
    let listed = admin.chat_json(COMPONENT, "list invites");
    assert!(
        rows_by(&listed, "module").contains_key("invites_page"),
        "{listed}"
    );

    // invites_page: a rockspec dependency (register_apps) and copied
    // directories (the templates and assets it serves from its directory).
    let install = admin.run(
        "install",
        json!({"modules": ["invites_page", "pubsub_subscription"], "enable": true}),
    );
    assert_eq!(last(&install)["status"], "completed", "{install}");
    let loaded = prosody.loaded_modules(DOMAIN);
    for module in ["invites_page", "register_apps", "pubsub_subscription"] {
        assert!(
            loaded.iter().any(|m| m == module),
            "{module} not in {loaded:?}\n{}",
            prosody.log()
        );
    }
    assert!(prosody
        .modules_dir()
        .join("mod_invites_page/html/invite.html")
        .is_file());

    // A higher revision published is offered, and update applies it live.
    server.publish("mod_pubsub_subscription", "2-1");
    assert_eq!(refresh_row(&mut admin, "community")["outcome"], "ok");
    let updates = rows_by(&admin.chat_json(COMPONENT, "list updates"), "module");
    assert_eq!(
        updates["pubsub_subscription"]["available"], "2-1",
        "{updates:?}"
    );
    let update = admin.run(
        "update",
        json!({"modules": ["pubsub_subscription"], "confirm": true}),
    );
    assert_eq!(last(&update)["status"], "completed", "{update}");
    assert_eq!(installed_version(&prosody, "pubsub_subscription"), "2-1");
    assert!(prosody
        .loaded_modules(DOMAIN)
        .iter()
        .any(|m| m == "pubsub_subscription"));

    let rolled = admin.run(
        "rollback",
        json!({"modules": ["pubsub_subscription"], "confirm": true}),
    );
    assert_eq!(last(&rolled)["status"], "completed", "{rolled}");
    assert_eq!(installed_version(&prosody, "pubsub_subscription"), "1-1");

    let removed = admin.run("remove", json!({"modules": ["pubsub_subscription"]}));
    assert_eq!(last(&removed)["status"], "completed", "{removed}");
    assert_eq!(
        installed_version(&prosody, "pubsub_subscription"),
        Value::Null
    );
    assert!(!prosody
        .modules_dir()
        .join("mod_pubsub_subscription")
        .exists());
    assert!(!prosody
        .loaded_modules(DOMAIN)
        .iter()
        .any(|m| m == "pubsub_subscription"));
    assert!(!std::fs::read_to_string(prosody.path("modman.cfg.lua"))
        .unwrap()
        .contains("pubsub_subscription"));
}

#[test]
fn modules_installed_by_prosodyctl_show_as_such_and_are_never_touched() {
    let server = RockServer::start();
    let host = Host::new(&server.served.url());
    // What `prosodyctl install` runs (luarocks into installer_plugin_path,
    // by default custom_plugins beside the admin socket), given the rock
    // itself so no other server is asked.
    let tree = host.dir.path().join("custom_plugins");
    let output = Command::new("luarocks")
        .args(["--lua-version=5.4", "--tree"])
        .arg(&tree)
        .args(["install", "--deps-mode=none"])
        .arg(server.www().join("mod_bob-1-1.src.rock"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let before = snapshot(&tree);
    let (ok, out, err) = host.run(&["refresh"]);
    assert!(ok, "{out}{err}");

    let (ok, out, err) = host.run(&["list", "--show", "installed", "--json"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        json_rows(&out, "module")["bob"]["installed"],
        "prosodyctl 1-1",
        "{out}"
    );
    let (ok, out, err) = host.run(&["info", "bob"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("installed by prosodyctl (1-1)") && out.contains("prosodyctl remove mod_bob"),
        "{out}"
    );
    // modman's own commands leave it alone.
    let (ok, out, _) = host.run(&["remove", "--yes", "bob", "--json"]);
    assert!(!ok);
    assert_eq!(json_output(&out)["error"], "not_found", "{out}");
    let (ok, out, _) = host.run(&["install", "--yes", "bob", "--json"]);
    assert!(!ok);
    assert_eq!(json_output(&out)["error"], "conflict", "{out}");
    assert_eq!(json_output(&out)["outcome"], "nothing_changed", "{out}");
    assert_eq!(snapshot(&tree), before);
    assert!(!host.modules().join("mod_bob").exists());
}

/// A process's peak resident memory (VmHWM) and its resident memory now
/// (VmRSS), in KiB, and the CPU time it has used, in clock ticks.
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    (kib("VmHWM:"), kib("VmRSS:"), fields[0] + fields[1])
}

/// 20 rocks of 60 MiB of zeros each under copy_directories, small on the
/// wire: a refresh used to hold every rock unpacked at once (1.9 GiB for
/// 16). Now modman reads them one at a time, keeps none of the zeros, and
/// stays within 64 MiB of its idle memory, twice (from the server, then
/// from its cache); it stops inflating past 1 GiB a refresh, so it offers
/// the first 18 and leaves 2 out unread; it keeps serving an admin.
#[test]
fn a_refresh_of_rocks_huge_unpacked_holds_one_at_a_time() {
    const ROCKS: usize = 20;
    let zeros = bloated_rocks::Zeros::new(60 * 1024 * 1024 + 1024);
    let dir = tempfile::tempdir().unwrap();
    let wire = bloated_rocks::server(dir.path(), ROCKS, &zeros);
    let served = Served::start(dir.path());
    let prosody = Prosody::start();
    let modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &luarocks_section(&served.url())),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    let (_, idle, cpu_before) = usage(modman.pid());
    for round in ["from the server", "from the cache"] {
        let refresh = admin.run_steps("refresh", json!([]));
        assert_eq!(last(&refresh)["status"], "completed", "{refresh}");
        let unread = refresh
            .to_string()
            .matches("the most one refresh inflates")
            .count();
        assert_eq!(unread, 2, "{refresh}");
        let (peak, _, cpu) = usage(modman.pid());
        let ticks = cpu - cpu_before;
        eprintln!(
            "{ROCKS} rocks, {} KiB on the wire, {} MiB unpacked: refresh {round}: modman peak {} KiB, idle {idle} KiB, CPU {ticks} ticks so far",
            wire / 1024,
            ROCKS * 60,
            peak
        );
        assert!(
            peak <= idle + 64 * 1024,
            "peak {peak} KiB, idle {idle} KiB, refresh {round}"
        );
    }
    let listed = admin.chat(COMPONENT, "list bloat");
    let offered = (0..ROCKS)
        .filter(|i| listed.contains(&format!("bloat_{i} ")))
        .count();
    assert_eq!(offered, 18, "{listed}");
    let (_, _, cpu) = usage(modman.pid());
    // Two refreshes inflate 2 x 18 x 60 MiB; a debug build does that in
    // well under a minute of CPU, a release build in a second or two.
    assert!(cpu - cpu_before < 60 * 100, "{} ticks", cpu - cpu_before);
}

/// Where Prosody's own plugin loader finds each of `modules` (its main
/// file), asked through its admin shell: the path it would load after the
/// next reload, or `nil`.
fn resolved(prosody: &Prosody, modules: &[String]) -> std::collections::BTreeMap<String, String> {
    let names = modules.join(" ");
    let chunk = format!(
        ">local ok, mm = pcall(require, 'prosody.core.modulemanager'); \
         if not ok then mm = require 'core.modulemanager' end; \
         for name in ('{names}'):gmatch('%S+') do \
         local content, path = mm.loader:load_resource(name); \
         print('RESOLVED ' .. name .. ' ' .. tostring(content and path)) end"
    );
    let printed = prosody.shell(&chunk);
    let found: std::collections::BTreeMap<String, String> = printed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("RESOLVED "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, path)| (name.to_owned(), path.to_owned()))
        .collect();
    assert_eq!(found.len(), modules.len(), "{printed}");
    found
}

/// Every module in Prosody's own module directory, by name.
fn shipped_modules() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(support::server().builtin_modules())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let name = name.strip_prefix("mod_")?;
            Some(name.strip_suffix(".lua").unwrap_or(name).to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A library rock `package` building the library `library`, which copies
/// the directory `lua/5.4/` holding replacements for Prosody's own
/// modules `targets`.
fn library_rock(package: &str, library: &str, targets: &[&str]) -> Vec<u8> {
    let dir = format!("Community-Modules-abc/{package}");
    let files: Vec<(String, Vec<u8>)> =
        std::iter::once((format!("{dir}/{library}.lib.lua"), b"return {}".to_vec()))
            .chain(targets.iter().map(|target| {
                (
                    format!("{dir}/lua/5.4/mod_{target}.lua"),
                    format!("module:log('error', 'the rock {package} replaced {target}')")
                        .into_bytes(),
                )
            }))
            .collect();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, data)| (path.as_str(), data.as_slice()))
        .collect();
    let mut spec = rockspec(
        package,
        &dir,
        &format!("{library} = \"{library}.lib.lua\""),
        "",
        "",
    );
    if !targets.is_empty() {
        spec = spec.replace(" } }\n", " }, copy_directories = { \"lua\" } }\n");
    }
    zip_of(&[
        (&format!("{package}-1-1.rockspec"), spec.as_bytes()),
        ("prosody-modules-abc.tar.gz", &tar_gz(&entries)),
    ])
}

/// Rocks that would put files where Prosody's loader looks for other
/// modules (a library named `share` or `lib`, the LuaRocks tree Prosody
/// searches for every module; a library named after a module Prosody
/// ships; a module building another module's Lua module) are left out of
/// the catalog, named with the file and why, cannot be installed, and
/// change nothing Prosody resolves for any of its modules, nor files,
/// managed config, installed.json or what Prosody loaded.
#[test]
fn rocks_placing_files_for_other_modules_change_nothing_prosody_resolves() {
    let targets = ["version", "saslauth", "auth_internal_hashed", "admin_shell"];
    let other = rockspec(
        "mod_other",
        "Community-Modules-abc/mod_other",
        "mod_other = \"mod_other.lua\", [\"mod_version.x\"] = \"mod_other.lua\"",
        "",
        "",
    );
    let rocks = vec![
        (
            "mod_lib_share",
            "1-1",
            library_rock("mod_lib_share", "share", &targets),
        ),
        (
            "mod_lib_lib",
            "1-1",
            library_rock("mod_lib_lib", "lib", &targets),
        ),
        (
            "mod_lib_version",
            "1-1",
            library_rock("mod_lib_version", "version", &[]),
        ),
        ("mod_other", "1-1", rock("mod_other", &other)),
        ("mod_fine", "1-1", plain("mod_fine", "", "")),
    ];
    let (_dir, served) = hostile_server(&rocks);
    let prosody = Prosody::start();
    let config = prosody.path("modman.toml");
    std::fs::write(
        &config,
        prosody.modman_config() + &luarocks_section(&served.url()),
    )
    .unwrap();
    let mut modules = shipped_modules();
    modules.extend(["other", "fine", "lib_share", "lib_lib", "lib_version"].map(String::from));
    let state = || {
        (
            snapshot(&prosody.modules_dir()),
            std::fs::read(prosody.path("modman.cfg.lua")).ok(),
            std::fs::read(prosody.path("modman-state/installed.json")).ok(),
            prosody.loaded_modules(DOMAIN),
        )
    };
    let before = (state(), resolved(&prosody, &modules));
    for target in targets {
        let own = format!("/usr/lib/prosody/modules/mod_{target}.lua");
        assert!(
            before.1[target].ends_with(&own),
            "{target}: {}",
            before.1[target]
        );
    }

    let (ok, out, err) = cli(&["refresh"], &config);
    assert!(ok, "{out}{err}");
    let said = format!("{out}{err}");
    for expected in [
        "mod_lib_share-1-1.src.rock: mod_lib_share-1-1.rockspec: `share/lua/5.4/mod_",
        "mod_lib_lib-1-1.src.rock: mod_lib_lib-1-1.rockspec: `lib/lib.lib.lua` is where Prosody's loader looks for every module's files",
        "mod_lib_version-1-1.src.rock: mod_lib_version-1-1.rockspec: the library is named `version`, like a module Prosody already has",
        "mod_other-1-1.src.rock: mod_other-1-1.rockspec: build.modules names `mod_version.x`, a Lua module of another Prosody module",
    ] {
        assert!(said.contains(expected), "{expected:?} not in {said}");
    }
    for name in ["lib_share", "lib_lib", "lib_version", "other"] {
        let (ok, _, err) = cli(&["install", "--yes", "--enable", name], &config);
        assert!(
            !ok && err.contains(&format!("no configured repository offers `{name}`")),
            "{name}: {err}"
        );
    }
    // Over XMPP alike: modman refuses, stays up and serves the admin.
    let modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &luarocks_section(&served.url())),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    let refresh = admin.run_steps("refresh", json!([]));
    assert_eq!(last(&refresh)["status"], "completed", "{refresh}");
    for name in ["lib_share", "lib_lib", "lib_version", "other"] {
        let run = admin.run("install", json!({"modules": [name], "enable": true}));
        assert_eq!(run["error"]["condition"], "item-not-found", "{name}: {run}");
    }
    let listed = admin.run("list", json!({}));
    assert_eq!(last(&listed)["status"], "completed", "{listed}");
    let after = (state(), resolved(&prosody, &modules));
    assert_eq!(after, before, "a hostile rock changed something");
    drop(modman);
    // What the library `share` would have written is what Prosody loads.
    let planted = prosody.modules_dir().join("share/lua/5.4/mod_version.lua");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, "-- not Prosody's").unwrap();
    let shadowed = resolved(&prosody, &["version".to_owned()]);
    assert!(
        shadowed["version"].ends_with("/modules/share/lua/5.4/mod_version.lua"),
        "{shadowed:?}"
    );
    std::fs::remove_dir_all(prosody.modules_dir().join("share")).unwrap();
    // The server's good module still installs and loads.
    let (ok, out, err) = cli(&["install", "--yes", "--enable", "fine"], &config);
    assert!(ok, "{out}{err}");
    assert!(prosody.loaded_modules(DOMAIN).contains(&"fine".to_owned()));
}

/// One corrupt rock upstream: the mirror leaves that module out (keeping
/// its last good copy when it has one), publishes and signs the rest,
/// names each module left out and why, and exits with its own status.
#[test]
fn a_mirror_survives_a_corrupt_rock() {
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let out = work.path().join("mirror");
    let modules = |out: &Path| -> Vec<(String, String)> {
        index(out)["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let field = |key: &str| m[key].as_str().unwrap().to_owned();
                (field("name"), field("version"))
            })
            .collect()
    };
    let verify = |out: &Path| {
        let output = modman(&[
            "repo",
            "verify",
            out.to_str().unwrap(),
            "--public-key",
            &public,
        ]);
        assert!(output.status.success(), "{}", text(&output.stdout));
    };
    fn good(name: &str) -> HandMade<'_> {
        (name, "1-1", plain(name, "", ""))
    }
    let (_dir, served) = hostile_server(&[good("mod_a"), good("mod_b"), good("mod_c")]);
    let output = mirror(&served.url(), &out, &key, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    // mod_c's new version and the new mod_d are corrupt.
    let (_dir, served) = hostile_server(&[
        good("mod_a"),
        good("mod_b"),
        ("mod_c", "2-1", b"PK\x03\x04 cut short".to_vec()),
        ("mod_d", "1-1", b"<html>not found</html>".to_vec()),
    ]);
    let output = mirror(&served.url(), &out, &key, &["--json"]);
    let printed = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(LEFT_OUT),
        "{printed}{}",
        text(&output.stderr)
    );
    verify(&out);
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        modules(&out),
        pairs(&[("a", "1-1"), ("b", "1-1"), ("c", "1-1")])
    );
    // Each left out by package, with the last good copy kept if any.
    let left_out: Vec<(Value, Value)> = json_output(&printed)["left_out"]
        .as_array()
        .unwrap_or_else(|| panic!("{printed}"))
        .iter()
        .map(|o| (o["package"].clone(), o["kept"].clone()))
        .collect();
    assert_eq!(
        left_out,
        [
            (json!("mod_c"), json!("1-1")),
            (json!("mod_d"), Value::Null)
        ],
        "{printed}"
    );
    // The help says what that status means.
    let help = text(&modman(&["repo", "mirror", "--help"]).stdout);
    assert!(
        help.contains(&format!(
            "{LEFT_OUT} when the mirror was published without some"
        )),
        "{help}"
    );
}

/// A server whose READMEs are each as long as modman reads (1 MiB): past
/// 32 MiB of descriptions, as much as a signed index may hold, the rest
/// are left out, each named, and the catalog offers the others.
#[test]
fn descriptions_past_an_index_s_size_are_left_out() {
    let readme = "a".repeat(1024 * 1024);
    let rocks: Vec<HandMade> = (0..34)
        .map(|i| {
            let package: &'static str = Box::leak(format!("mod_long_{i:02}").into_boxed_str());
            let dir = format!("Community-Modules-abc/{package}");
            let spec = rockspec(
                package,
                &dir,
                &format!("{package} = \"{package}.lua\""),
                "",
                "",
            );
            let source = tar_gz(&[
                (&format!("{dir}/{package}.lua"), b"-- long".as_slice()),
                (&format!("{dir}/README.md"), readme.as_bytes()),
            ]);
            let bytes = zip_of(&[
                (&format!("{package}-1-1.rockspec"), spec.as_bytes()),
                ("prosody-modules-abc.tar.gz", &source),
            ]);
            (package, "1-1", bytes)
        })
        .collect();
    let (_dir, served) = hostile_server(&rocks);
    let host = Host::new(&served.url());
    let (ok, out, err) = host.run(&["refresh", "--json"]);
    assert!(ok, "{out}{err}");
    let community = &json_rows(&out, "repository")["community"];
    let said = community["result"].as_str().unwrap_or_default();
    // 31 descriptions of 1 MiB and their file lists fit, the 32nd does not.
    for i in 31..34 {
        assert!(
            said.contains(&format!("mod_long_{i:02}-1-1.src.rock: its description would take this server's catalog past 32 MiB")),
            "{i}: {said}"
        );
    }
    assert!(!said.contains("mod_long_30-1-1.src.rock"), "{said}");
    assert_eq!(community["modules"], "31", "{out}");
}
