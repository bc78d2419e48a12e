//! Test harness: a private Prosody from Debian's package, the real
//! `modman` binary, and slixmpp clients. Everything lives in one temp dir
//! on free loopback ports; `Drop` kills what was started, also when a test
//! panics. Readiness is awaited by asking (connecting, querying), never by
//! sleeping a fixed time.
//!
//! Which Prosody: `MODMAN_TEST_PROSODY=0.12` (the default) is Debian 12's
//! package on this machine; `MODMAN_TEST_PROSODY=13` is Debian 13's in the
//! chroot scripts/test makes (`MODMAN_TRIXIE_ROOT`, default
//! /var/tmp/modman-trixie). Every use of Prosody's programs and module
//! corpus goes through [`server`], so a test runs unchanged on both.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use minidom::Element;
use serde_json::{json, Value};

pub mod fleet;

pub const DOMAIN: &str = "localhost";
pub const COMPONENT: &str = "modman.localhost";
pub const ADMIN: &str = "admin@localhost";
pub const USER: &str = "user@localhost";
pub const PASSWORD: &str = "correct horse";
const SECRET: &str = "test-secret";
const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` until it returns `Some`, or panics after [`DEADLINE`]
/// with `what` in the message.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A Prosody release the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Debian 12's prosody 0.12 and its 2023 prosody-modules, on this machine.
    V0_12,
    /// Debian 13's prosody 13.0 and its 2025 prosody-modules, in a chroot.
    V13,
}

/// Where the Prosody under test lives: `/` for the host's, or a chroot
/// whose own path is a link to `/` inside it, so a path under `root` names
/// the same file for the host and for Prosody.
pub struct Server {
    pub version: Version,
    pub root: PathBuf,
}

/// The Prosody chosen by `MODMAN_TEST_PROSODY` (read once).
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let chosen = std::env::var("MODMAN_TEST_PROSODY").unwrap_or_else(|_| "0.12".into());
        match chosen.as_str() {
            "0.12" => Server {
                version: Version::V0_12,
                root: PathBuf::from("/"),
            },
            "13" => {
                let root = PathBuf::from(
                    std::env::var("MODMAN_TRIXIE_ROOT")
                        .unwrap_or_else(|_| "/var/tmp/modman-trixie".into()),
                );
                assert!(
                    root.join(".modman-chroot-complete").is_file(),
                    "MODMAN_TEST_PROSODY=13 needs the Prosody 13 chroot at {}: run scripts/test \
                     (it makes it once), or set MODMAN_TRIXIE_ROOT to where it is",
                    root.display()
                );
                Server {
                    version: Version::V13,
                    root,
                }
            }
            other => panic!("MODMAN_TEST_PROSODY is `{other}`; use 0.12 or 13"),
        }
    })
}

impl Server {
    /// A command running one of Prosody's programs (prosody, prosodyctl,
    /// dpkg-query...) where that Prosody is installed.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self.version {
            Version::V0_12 => Command::new(program),
            Version::V13 => {
                let mut command = Command::new("chroot");
                command.arg(&self.root).arg(program);
                command
            }
        }
    }

    /// `path` (absolute, as Prosody sees it) as seen from this machine.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Prosody's own modules, which also hold Debian's prosody-modules.
    pub fn builtin_modules(&self) -> PathBuf {
        self.host_path("/usr/lib/prosody/modules")
    }

    /// A new temp dir that Prosody can reach at the same path.
    pub fn tempdir(&self, prefix: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.host_path(&std::env::temp_dir().display().to_string()))
            .unwrap()
    }

    /// For a test that only makes sense on `version`: panics, naming why,
    /// when run on the other one. Such tests sit in a module named
    /// `prosody_13_only` or `prosody_0_12_only`, marked `#[ignore]` so a
    /// plain `cargo test` leaves them out; scripts/test runs them
    /// (`--include-ignored`) and leaves each out of the other version's run
    /// by that name (`--skip`), so no run passes one without running it.
    pub fn require(&self, version: Version, why: &str) {
        assert_eq!(
            self.version, version,
            "this test runs only on Prosody {version:?} ({why}); \
             it is run with MODMAN_TEST_PROSODY set accordingly by scripts/test"
        );
    }
}

/// `prosodyctl --config CONFIG ARGS...` for `prosody`'s server; its output.
pub fn prosodyctl(prosody: &Prosody, args: &[&str]) -> std::process::Output {
    server()
        .command("prosodyctl")
        .arg("--config")
        .arg(prosody.config_path())
        .args(args)
        .output()
        .expect("prosodyctl runs (scripts/test installs prosody, and makes the Prosody 13 chroot)")
}

/// A module directory of the Debian corpus of the Prosody under test.
pub fn corpus_module(name: &str) -> PathBuf {
    server().builtin_modules().join(name)
}

/// A program to run, on this machine or inside the Prosody 13 chroot
/// (such as the binary of the package installed there).
pub struct Program {
    /// The chroot it runs in, if any.
    pub chroot: Option<PathBuf>,
    /// Its path (inside the chroot, if any).
    pub path: PathBuf,
}

impl Program {
    /// The modman binary of this build.
    pub fn this_build() -> Program {
        Program {
            chroot: None,
            path: PathBuf::from(env!("CARGO_BIN_EXE_modman")),
        }
    }

    pub fn command(&self) -> Command {
        match &self.chroot {
            None => Command::new(&self.path),
            Some(root) => {
                let mut command = Command::new("chroot");
                command.arg(root).arg(&self.path);
                command
            }
        }
    }
}

/// A loopback port nobody listens on, and that no other call in this
/// process has handed out: between this call and the bind of whoever asked
/// (a Prosody, a repository's HTTP server), the kernel may offer the same
/// free port to the next caller, and a test's repository would then be
/// answered by another test's Prosody.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A private Prosody with an admin and a non-admin account.
pub struct Prosody {
    pub dir: tempfile::TempDir,
    pub c2s_port: u16,
    pub component_port: u16,
    /// Prosody's HTTP and HTTPS ports: its own, so that nothing in a test
    /// depends on Prosody's default ports or on who else holds them.
    pub http_port: u16,
    pub https_port: u16,
    child: Option<Child>,
}

impl Prosody {
    pub fn start() -> Prosody {
        Prosody::start_with(|config| config)
    }

    /// A Prosody configured as an admin has it before modman: the
    /// template without plugin_paths, modman's component, the Include,
    /// admin_shell and version.
    pub fn start_plain() -> Prosody {
        let modman_only = [
            "plugin_paths",
            "modman",
            "component_secret",
            "Include",
            "-- The file",
            "-- hosts above",
        ];
        Prosody::start_with(|config| {
            config
                .lines()
                .filter(|l| !modman_only.iter().any(|k| l.contains(k)))
                .map(|l| l.replace(", \"version\", \"admin_shell\"", ""))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Starts Prosody with the template, changed by `edit` (before its
    /// placeholders are filled in).
    pub fn start_with(edit: impl Fn(String) -> String) -> Prosody {
        let mut prosody = Prosody::prepare(edit);
        prosody.launch();
        prosody
    }

    /// A Prosody that also offers TLS on c2s, for the clients that log in
    /// only over TLS (Poezio 0.15, Dino): a certificate for [`DOMAIN`],
    /// signed by a CA made for this test alone ([`Prosody::ca_path`]).
    /// The other tests keep plain c2s, so that slixmpp, which would check
    /// any certificate offered, needs no CA.
    pub fn start_with_tls() -> Prosody {
        let mut prosody = Prosody::prepare(|config| {
            config.replace("modules_enabled = { ", "modules_enabled = { \"tls\", ")
        });
        prosody.make_certificate();
        prosody.launch();
        prosody
    }

    /// The CA that signed the c2s certificate of [`Prosody::start_with_tls`],
    /// for a client to trust.
    pub fn ca_path(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// Makes the test's CA and, in Prosody's `certificates` directory
    /// (where it looks for `DOMAIN.crt` and `DOMAIN.key`), a certificate
    /// for [`DOMAIN`] signed by it, with the extensions a strict verifier
    /// (Python 3.13's default) asks for.
    fn make_certificate(&self) {
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path())
                .output()
                .expect("openssl runs (scripts/test installs it)");
            assert!(
                output.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let curve = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509", "-days", "2", "-subj", "/CN=modman test CA"],
                &curve[..],
                &["-keyout", "ca.key", "-out", "ca.crt"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        let (crt, key) = (format!("certs/{DOMAIN}.crt"), format!("certs/{DOMAIN}.key"));
        openssl(
            &[
                &[
                    "req",
                    "-x509",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={DOMAIN}"),
                ],
                &curve[..],
                &[
                    "-CA", "ca.crt", "-CAkey", "ca.key", "-keyout", &key, "-out", &crt,
                ],
                &["-addext", &format!("subjectAltName=DNS:{DOMAIN}")],
                &["-addext", "basicConstraints=critical,CA:FALSE"],
                &[
                    "-addext",
                    "keyUsage=critical,digitalSignature,keyEncipherment",
                ],
                &["-addext", "extendedKeyUsage=serverAuth"],
            ]
            .concat(),
        );
    }

    /// Writes the config (the template changed by `edit`) and registers
    /// the accounts, without starting Prosody.
    fn prepare(edit: impl Fn(String) -> String) -> Prosody {
        let dir = server().tempdir("modman-test-");
        let prosody = Prosody {
            dir,
            c2s_port: free_port(),
            component_port: free_port(),
            http_port: free_port(),
            https_port: free_port(),
            child: None,
        };
        std::fs::create_dir_all(prosody.path("data")).unwrap();
        std::fs::create_dir_all(prosody.path("certs")).unwrap();
        std::fs::write(prosody.path("modman.cfg.lua"), "").unwrap();
        std::fs::create_dir_all(prosody.modules_dir()).unwrap();
        let config = prosody.fill_template(&edit(include_str!("prosody.cfg.lua.in").to_owned()));
        std::fs::write(prosody.config_path(), config).unwrap();
        for user in [ADMIN, USER] {
            let (name, host) = user.split_once('@').unwrap();
            let output = prosodyctl(&prosody, &["register", name, host, PASSWORD]);
            assert!(
                output.status.success(),
                "prosodyctl register {user} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        prosody
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("prosody.cfg.lua")
    }

    pub fn modules_dir(&self) -> PathBuf {
        self.path("modules")
    }

    /// Fills in a template shared with scripts/demo.
    fn fill_template(&self, template: &str) -> String {
        template
            .replace("@DIR@", &self.dir.path().display().to_string())
            .replace("@C2S_PORT@", &self.c2s_port.to_string())
            .replace("@COMPONENT_PORT@", &self.component_port.to_string())
            .replace("@HTTP_PORT@", &self.http_port.to_string())
            .replace("@HTTPS_PORT@", &self.https_port.to_string())
            .replace("@SECRET@", SECRET)
            .replace(
                "@BUILTIN_MODULES@",
                &server().builtin_modules().display().to_string(),
            )
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.path("prosody.stdout")).unwrap();
        let child = server()
            .command("prosody")
            .arg("-F")
            .arg("--config")
            .arg(self.config_path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prosody starts");
        self.child = Some(child);
        let (c2s, component) = (self.c2s_port, self.component_port);
        // Prosody opens its component port only once a component exists,
        // and its admin socket only with admin_shell; both come up a little
        // after c2s, so wait for each that is configured.
        let config = std::fs::read_to_string(self.config_path()).unwrap();
        let (has_component, has_socket, has_pidfile) = (
            config.contains("component_secret"),
            config.contains("\"admin_shell\""),
            config.contains("pidfile ="),
        );
        let socket = self.path("data/prosody.sock");
        // Prosody writes its pid file a little after it listens: a test
        // that snapshots the directory must not see it appear later.
        let pidfile = self.path("prosody.pid");
        wait_for("Prosody to listen", || {
            let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
            let socket_up = || std::os::unix::net::UnixStream::connect(&socket).is_ok();
            (up(c2s)
                && (!has_component || up(component))
                && (!has_socket || socket_up())
                && (!has_pidfile || pidfile.exists()))
            .then_some(())
        });
    }

    /// Stops Prosody (SIGKILL).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Kills Prosody (SIGKILL: no goodbye to anyone) and starts it again.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // A killed Prosody leaves its pid file: gone, so the next
            // launch waits for the new one.
            let _ = std::fs::remove_file(self.path("prosody.pid"));
        }
    }

    /// The modules loaded on `host`, asked with `prosodyctl shell`: what
    /// Prosody runs, independently of anything modman says. A status
    /// Prosody prints after a name (`dnsbl (error: ...)`) is left out.
    pub fn loaded_modules(&self, host: &str) -> Vec<String> {
        self.module_list(host)
            .into_iter()
            .map(|line| match line.split_once(" (") {
                Some((name, _)) => name.to_owned(),
                None => line,
            })
            .collect()
    }

    /// The lines of `module:list(host)` as `prosodyctl shell` prints them.
    pub fn module_list(&self, host: &str) -> Vec<String> {
        self.shell(&format!("module:list(\"{host}\")"))
            .lines()
            .filter(|l| l.starts_with("    "))
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// What Prosody holds for option `key` on `host`, asked with
    /// `prosodyctl shell config get`: as Prosody serializes it.
    pub fn config_get(&self, host: &str, key: &str) -> String {
        let output = prosodyctl(self, &["shell", "config", "get", host, key]);
        assert!(
            output.status.success(),
            "prosodyctl shell config get failed"
        );
        let out = String::from_utf8_lossy(&output.stdout);
        out.trim().trim_start_matches("OK: ").to_owned()
    }

    /// What `prosodyctl shell COMMAND` prints (it must succeed).
    pub fn shell(&self, command: &str) -> String {
        let output = prosodyctl(self, &["shell", command]);
        assert!(
            output.status.success(),
            "prosodyctl shell {command} failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Prosody's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("Prosody is running").id()
    }

    /// Prosody's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("prosody.log")).unwrap_or_default()
    }

    /// A modman.toml for this server.
    pub fn modman_config(&self) -> String {
        self.fill_template(include_str!("modman.toml.in"))
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real modman binary, connected to a [`Prosody`].
pub struct Modman {
    child: Child,
    log: PathBuf,
}

impl Modman {
    /// Starts `modman run` with `config` and waits until it answers
    /// disco#info through Prosody (so it is connected, not just started).
    pub fn start(prosody: &Prosody, config: &str) -> Modman {
        Modman::start_binary(prosody, config, &Program::this_build())
    }

    /// [`Modman::start`] with another build of modman, such as the
    /// installed package's.
    pub fn start_binary(prosody: &Prosody, config: &str, binary: &Program) -> Modman {
        Modman::start_with_env(prosody, config, binary, &[])
    }

    /// [`Modman::start_binary`] with more environment, such as the
    /// debug build's `MODMAN_PAUSE_AT` and `MODMAN_PAUSE_FILE`.
    pub fn start_with_env(
        prosody: &Prosody,
        config: &str,
        binary: &Program,
        env: &[(&str, &OsStr)],
    ) -> Modman {
        let mut command = binary.command();
        command.envs(env.iter().copied());
        let modman = Modman::spawn(prosody, config, command, |command| command);
        let mut probe = Client::connect(prosody, USER);
        probe.wait_until_component_answers();
        modman
    }

    /// Writes `config` beside `prosody` and starts `modman run` with it
    /// through `binary`, as `place` puts it (such as into a network
    /// namespace), without waiting for anything.
    fn spawn(
        prosody: &Prosody,
        config: &str,
        mut binary: Command,
        place: impl FnOnce(Command) -> Command,
    ) -> Modman {
        let config_path = prosody.path("modman.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = prosody.path("modman.log");
        // Debug unless the caller chose a level (a benchmark runs modman
        // at its default, as deployed).
        if !binary.get_envs().any(|(key, _)| key == "RUST_LOG") {
            binary.env("RUST_LOG", "debug");
        }
        binary
            .args(["run", "--config"])
            .arg(&config_path)
            .env("NO_COLOR", "1");
        let child = place(binary)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Modman { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// modman's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process started is still running (a restart in place
    /// keeps it).
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (`TERM`, `KILL`...) without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until modman has exited; returns its exit status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        wait_for("modman to exit", || self.child.try_wait().unwrap())
    }

    /// Sends SIGTERM and waits; returns whether modman exited successfully.
    pub fn terminate(mut self) -> bool {
        let status = Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exit = wait_for("modman to exit", || self.child.try_wait().unwrap());
        exit.success()
    }
}

impl Drop for Modman {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A slixmpp client (tests/support/xmpp_client.py) logged in as `jid`.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    pub fn connect(prosody: &Prosody, jid: &str) -> Client {
        Client::connect_as(prosody, jid, &[])
    }

    /// A client that says it is `software` (name, version, caps node)
    /// when asked with XEP-0092 and in its presence (XEP-0115); slixmpp
    /// when empty.
    pub fn connect_as(prosody: &Prosody, jid: &str, software: &[&str]) -> Client {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/xmpp_client.py");
        let mut python = Command::new("/usr/bin/python3");
        python
            .arg(script)
            .args([jid, PASSWORD, "127.0.0.1", &prosody.c2s_port.to_string()])
            .args(software);
        Client::spawn(python, jid)
    }

    /// A client from `command` (xmpp_client.py with its arguments), once
    /// it has logged in as `jid`.
    fn spawn(mut command: Command, jid: &str) -> Client {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 runs (scripts/test installs python3-slixmpp)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut client = Client {
            child,
            stdin,
            stdout,
        };
        let hello = client.read();
        assert_eq!(
            hello,
            json!({"ready": true}),
            "client {jid} could not log in"
        );
        client
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("client said {line:?}: {e}"))
    }

    /// Sends one request line and returns the answer.
    pub fn request(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.read()
    }

    /// Sends a raw IQ and returns the reply stanza.
    pub fn iq(&mut self, xml: &str) -> Element {
        let answer = self.request(json!({"op": "iq", "xml": xml}));
        reply_stanza(&answer, xml)
    }

    /// Sends `xml` exactly as written (never parsed on the way, so it may
    /// be nested deeper than any parser of the client's would take) and
    /// returns the reply to the IQ with id `id`.
    pub fn raw(&mut self, xml: &str, id: &str) -> Element {
        let answer = self.request(json!({"op": "raw", "xml": xml, "id": id}));
        reply_stanza(&answer, &format!("IQ {id}"))
    }

    /// Sends a raw IQ; its reply is read later with [`Self::iq_reply`].
    pub fn iq_later(&mut self, xml: &str) {
        assert_eq!(
            self.request(json!({"op": "iq_later", "xml": xml})),
            json!({"sent": true})
        );
    }

    /// The reply to the IQ [`Self::iq_later`] sent.
    pub fn iq_reply(&mut self) -> Element {
        let answer = self.request(json!({"op": "iq_reply"}));
        reply_stanza(&answer, "the IQ sent before")
    }

    /// From now on, leaves every XEP-0092 version query unanswered until
    /// [`Self::release_versions`].
    pub fn hold_versions(&mut self) {
        assert_eq!(
            self.request(json!({"op": "hold_versions"})),
            json!({"holding": true})
        );
    }

    /// How many version queries are held now.
    pub fn held_versions(&mut self) -> u64 {
        self.request(json!({"op": "held_versions"}))["held"]
            .as_u64()
            .unwrap()
    }

    /// Answers the version queries held, and later ones at once; how many
    /// were held.
    pub fn release_versions(&mut self) -> u64 {
        self.request(json!({"op": "release_versions"}))["released"]
            .as_u64()
            .unwrap()
    }

    /// Sends a raw stanza without waiting for anything.
    pub fn send(&mut self, xml: &str) {
        assert_eq!(
            self.request(json!({"op": "send", "xml": xml})),
            json!({"sent": true})
        );
    }

    /// Runs a command through slixmpp's XEP-0050 plugin, submitting `fields`
    /// if a form is shown.
    pub fn run(&mut self, node: &str, fields: Value) -> Value {
        self.run_steps(node, json!([fields]))
    }

    /// Runs a command, submitting one form of `steps` per step while the
    /// command is still executing (parameters, then a confirmation...).
    pub fn run_steps(&mut self, node: &str, steps: Value) -> Value {
        self.request(json!({"op": "run", "to": COMPONENT, "node": node, "steps": steps}))
    }

    /// The commands slixmpp's XEP-0050 plugin finds on the component.
    pub fn commands(&mut self) -> Value {
        self.request(json!({"op": "commands", "to": COMPONENT}))
    }

    /// Sends a chat message to `to` and returns the body of the next
    /// message from it.
    pub fn chat(&mut self, to: &str, body: &str) -> String {
        let answer = self.request(json!({"op": "chat", "to": to, "body": body}));
        answer["body"]
            .as_str()
            .unwrap_or_else(|| panic!("no answer to {body:?}: {answer}"))
            .to_owned()
    }

    /// The facts modman's answer to `body` carries beside its text (an
    /// XEP-0335 JSON container): a result like the CLI's `--json`, or an
    /// error's kind and outcome.
    pub fn chat_json(&mut self, to: &str, body: &str) -> Value {
        let answer = self.request(json!({"op": "chat", "to": to, "body": body}));
        answer["json"].clone()
    }

    /// The next chat message from `from` that was not an answer to this
    /// client (a notice): its text and its facts (XEP-0335), or `None`
    /// after 20 seconds.
    pub fn next_chat(&mut self, from: &str) -> Option<(String, Value)> {
        let answer = self.request(json!({"op": "next_chat", "from": from}));
        let body = answer["body"].as_str()?.to_owned();
        Some((body, answer["json"].clone()))
    }

    /// Joins `room` as `nick`; a room this client creates is configured
    /// with `whois` ("anyone": non-anonymous; "moderators": semi-anonymous).
    pub fn join(&mut self, room: &str, nick: &str, whois: &str) {
        let answer =
            self.request(json!({"op": "join", "room": room, "nick": nick, "whois": whois}));
        assert_eq!(answer, json!({"joined": true}), "joining {room}");
    }

    /// [`Client::join`] a room this client creates with presence broadcast
    /// only for occupants in `roles` (such as `["moderator"]`): the others
    /// enter and leave unseen by everyone but moderators.
    pub fn join_broadcasting(&mut self, room: &str, nick: &str, whois: &str, roles: &[&str]) {
        let answer = self.request(
            json!({"op": "join", "room": room, "nick": nick, "whois": whois, "broadcast": roles}),
        );
        assert_eq!(answer, json!({"joined": true}), "joining {room}");
    }

    /// Says `body` in `room`, with a `<delay/>` if `delayed`.
    pub fn say(&mut self, room: &str, body: &str, delayed: bool) {
        let answer =
            self.request(json!({"op": "say", "room": room, "body": body, "delay": delayed}));
        assert_eq!(answer, json!({"sent": true}));
    }

    /// The facts (XEP-0335 JSON) of the next thing `nick` says in `room`
    /// (`Null` when it carries none), or `None` after `seconds`.
    pub fn next_json_from(&mut self, room: &str, nick: &str, seconds: u64) -> Option<Value> {
        let answer =
            self.request(json!({"op": "next", "room": room, "nick": nick, "timeout": seconds}));
        answer.get("body").map(|_| answer["json"].clone())
    }

    /// The next thing `nick` says in `room`, or `None` after `seconds`.
    pub fn next_from(&mut self, room: &str, nick: &str, seconds: u64) -> Option<String> {
        let answer =
            self.request(json!({"op": "next", "room": room, "nick": nick, "timeout": seconds}));
        answer["body"].as_str().map(str::to_owned)
    }

    /// Waits until `nick` is in `room`.
    pub fn wait_for_occupant(&mut self, room: &str, nick: &str) {
        let answer = self.request(json!({"op": "occupant", "room": room, "nick": nick}));
        assert_eq!(
            answer,
            json!({"present": true}),
            "{nick} never joined {room}"
        );
    }

    /// Waits until `nick` has left `room`.
    pub fn wait_for_departure(&mut self, room: &str, nick: &str) {
        let answer = self.request(json!({"op": "absent", "room": room, "nick": nick}));
        assert_eq!(answer, json!({"absent": true}), "{nick} never left {room}");
    }

    /// disco#info until it is a result: modman is connected and serving.
    pub fn wait_until_component_answers(&mut self) {
        let probe = format!("<iq type='get' to='{COMPONENT}' id='probe'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        wait_for("modman to answer through Prosody", || {
            (self.iq(&probe).attr("type") == Some("result")).then_some(())
        });
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply stanza in the test client's `answer` to `what`, parsed.
fn reply_stanza(answer: &Value, what: &str) -> Element {
    let reply = answer["xml"]
        .as_str()
        .unwrap_or_else(|| panic!("no reply to {what}: {answer}"));
    // slixmpp leaves out the stream's default namespace.
    let wrapped: Element = format!("<w xmlns='jabber:client'>{reply}</w>")
        .parse()
        .unwrap_or_else(|e| panic!("reply {reply} does not parse: {e}"));
    wrapped
        .children()
        .next()
        .cloned()
        .expect("the reply stanza")
}

/// Parts of a stanza error a test checks: (type, condition, XEP-0050
/// condition, text).
pub fn stanza_error(reply: &Element) -> (String, String, Option<String>, String) {
    assert_eq!(
        reply.attr("type"),
        Some("error"),
        "expected an error, got {}",
        String::from(reply)
    );
    let error = reply
        .get_child("error", "jabber:client")
        .expect("an <error/> child");
    let mut condition = None;
    let mut app = None;
    let mut text = String::new();
    for child in error.children() {
        match (child.ns().as_str(), child.name()) {
            ("urn:ietf:params:xml:ns:xmpp-stanzas", "text") => text = child.text(),
            ("urn:ietf:params:xml:ns:xmpp-stanzas", name) => condition = Some(name.to_owned()),
            ("http://jabber.org/protocol/commands", name) => app = Some(name.to_owned()),
            _ => {}
        }
    }
    (
        error.attr("type").unwrap_or_default().to_owned(),
        condition.expect("a defined condition"),
        app,
        text,
    )
}

/// The facts of a command a person's client sees refused or failed: a
/// completed command whose result form says `outcome` failed, as
/// (condition, text).
pub fn failed_command(reply: &Element) -> (String, String) {
    let command = reply
        .get_child("command", "http://jabber.org/protocol/commands")
        .unwrap_or_else(|| panic!("expected a command, got {}", String::from(reply)));
    assert_eq!(
        command.attr("status"),
        Some("completed"),
        "{}",
        String::from(reply)
    );
    let form = command
        .get_child("x", "jabber:x:data")
        .unwrap_or_else(|| panic!("a result form in {}", String::from(reply)));
    let value = |var: &str| -> String {
        form.children()
            .filter(|f| f.attr("var") == Some(var))
            .flat_map(|f| f.children().map(Element::text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(value("outcome"), "failed", "{}", String::from(reply));
    (value("condition"), value("text"))
}

/// A module repository built from Debian's prosody-modules with the real
/// `modman repo` commands and served over HTTP on 127.0.0.1 by Python's
/// static file server, as an admin could serve it.
pub struct Repository {
    /// Its name: signed into its index, and its `[[repositories]]` name.
    pub name: String,
    pub dir: tempfile::TempDir,
    pub public_key: String,
    pub port: u16,
    server: Option<Child>,
}

impl Repository {
    /// A repository of the Debian prosody-modules of the Prosody under test.
    pub fn start() -> Repository {
        Repository::start_with(debian_corpus)
    }

    /// A repository `local` of the module tree `populate` writes into its
    /// argument.
    pub fn start_with(populate: impl FnOnce(&Path)) -> Repository {
        Repository::start_named("local", populate)
    }

    /// A repository `name` of the module tree `populate` writes into its
    /// argument, with a key of its own.
    pub fn start_named(name: &str, populate: impl FnOnce(&Path)) -> Repository {
        let mut repository = Repository::keyed(name);
        populate(&repository.dir.path().join("corpus"));
        repository.rebuild();
        repository.serve();
        repository
    }

    /// A repository `local` as an admin without the community repository
    /// makes one: `modman repo build --from-debian` of the Debian
    /// prosody-modules of the Prosody under test.
    pub fn start_from_debian() -> Repository {
        Repository::start_from_debian_by(&Program::this_build())
    }

    /// [`Repository::start_from_debian`] built by `binary`, such as the
    /// one the package installed in the Prosody 13 chroot, which reads
    /// the chroot's Debian as its own; the repository is made where that
    /// binary reaches it at the same path.
    pub fn start_from_debian_by(binary: &Program) -> Repository {
        let mut repository = Repository::keyed_in("local", server().tempdir("modman-repo-test-"));
        let debian_root = match binary.chroot {
            Some(_) => PathBuf::from("/"),
            None => server().root.clone(),
        };
        let output = binary
            .command()
            .args(["repo", "build", "--from-debian", "--debian-root"])
            .arg(debian_root)
            .arg("--out")
            .arg(repository.served())
            .arg("--key")
            .arg(repository.dir.path().join("key"))
            .args(["--name", &repository.name])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "repo build --from-debian: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        repository.serve();
        repository
    }

    /// A repository `name` with a key of its own, neither built nor served.
    fn keyed(name: &str) -> Repository {
        let dir = tempfile::Builder::new()
            .prefix("modman-repo-test-")
            .tempdir()
            .unwrap();
        Repository::keyed_in(name, dir)
    }

    /// [`Repository::keyed`] in `dir`.
    fn keyed_in(name: &str, dir: tempfile::TempDir) -> Repository {
        let key = dir.path().join("key");
        let output = Command::new(env!("CARGO_BIN_EXE_modman"))
            .args(["repo", "keygen", "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(output.status.success());
        let public_key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        Repository {
            name: name.to_owned(),
            dir,
            public_key,
            port: free_port(),
            server: None,
        }
    }

    /// The module tree the repository is built from.
    pub fn corpus(&self, module: &str) -> PathBuf {
        self.dir.path().join("corpus").join(module)
    }

    /// Adds mod_broken, whose code fails when Prosody loads it, with
    /// `readme`, and rebuilds the index.
    pub fn add_broken_module(&self, readme: &str) {
        let broken = self.corpus("mod_broken");
        std::fs::create_dir(&broken).unwrap();
        std::fs::write(
            broken.join("mod_broken.lua"),
            "error(\"modman test: broken on purpose\")\n",
        )
        .unwrap();
        std::fs::write(broken.join("README.markdown"), readme).unwrap();
        self.rebuild();
    }

    /// The served directory.
    pub fn served(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// Serves `index` in place of the built one, signed with the
    /// repository's own key, as another builder might: returns the bytes
    /// served.
    pub fn serve_signed(&self, index: &serde_json::Value) -> Vec<u8> {
        let bytes = serde_json::to_vec_pretty(index).unwrap();
        let key = modman::repo::signing::read_private(&self.dir.path().join("key")).unwrap();
        std::fs::write(self.served().join("index.json"), &bytes).unwrap();
        std::fs::write(
            self.served().join("index.json.sig"),
            modman::repo::signing::sign(&key, &bytes),
        )
        .unwrap();
        bytes
    }

    /// `modman repo build` from the corpus again (after a test changed it).
    pub fn rebuild(&self) {
        self.rebuild_with(&[], &[]);
    }

    /// [`Repository::rebuild`] with more arguments (`--valid-for`) and
    /// environment (`SOURCE_DATE_EPOCH`, to date the index in the past).
    pub fn rebuild_with(&self, args: &[&str], env: &[(&str, &str)]) {
        self.build_into(&self.served(), args, env);
    }

    /// `modman repo build` of this repository (its tree, key and name)
    /// into `out`, which need not be the served directory.
    pub fn build_into(&self, out: &Path, args: &[&str], env: &[(&str, &str)]) {
        let output = Command::new(env!("CARGO_BIN_EXE_modman"))
            .envs(env.iter().copied())
            .args(["repo", "build", "--from"])
            .arg(self.dir.path().join("corpus"))
            .arg("--out")
            .arg(out)
            .arg("--key")
            .arg(self.dir.path().join("key"))
            .args(["--name", &self.name])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "repo build: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `modman repo advise` on the served index: marks `version` of
    /// `module` insecure, fixed by `fixed`, because of `reason`.
    pub fn advise_insecure(&self, module: &str, version: &str, fixed: &str, reason: &str) {
        let output = Command::new(env!("CARGO_BIN_EXE_modman"))
            .args(["repo", "advise"])
            .arg(self.served())
            .args([module, version, "--kind", "insecure", "--fixed", fixed])
            .args(["--reason", reason])
            .arg("--key")
            .arg(self.dir.path().join("key"))
            .output()
            .unwrap();
        assert!(output.status.success(), "repo advise: {output:?}");
    }

    /// The index as served, parsed.
    pub fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.served().join("index.json")).unwrap()).unwrap()
    }

    /// The index entry of `module`.
    pub fn entry(&self, module: &str) -> Value {
        let index = self.index();
        index["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == module)
            .cloned()
            .expect("module in index")
    }

    pub fn serve(&mut self) {
        let mut server = Command::new("/usr/bin/python3");
        server
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(self.served())
            .arg(self.port.to_string());
        self.start_server(server);
    }

    /// Runs `server` as the repository's HTTP server, until it answers on
    /// the repository's port.
    fn start_server(&mut self, mut server: Command) {
        let child = server
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(child);
        let port = self.port;
        wait_for("the repository's HTTP server", || {
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
    }

    /// Serves the repository again as a production web server does,
    /// over HTTP/1.1 with connections kept (`keepalive_http.py`); returns
    /// the file its requests are logged to, a line each: the client's
    /// port, the path, and whether the request was `waiting` before the
    /// answer to the one before it (pipelined) or `asked` after.
    pub fn serve_keeping_connections(&mut self) -> PathBuf {
        self.stop();
        let log = self.dir.path().join("requests.log");
        let mut server = Command::new("/usr/bin/python3");
        server
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/keepalive_http.py"))
            .arg(self.served())
            .arg(self.port.to_string())
            .arg(&log);
        self.start_server(server);
        log
    }

    /// Takes the HTTP server down: the repository is unreachable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The `[[repositories]]` section naming this repository.
    pub fn config_section(&self) -> String {
        format!(
            "\n[[repositories]]\nname = \"{}\"\nurl = \"http://127.0.0.1:{}/\"\npublic_key = \"{}\"\n",
            self.name, self.port, self.public_key
        )
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A module of the corpus under `corpus`: `mod_NAME/mod_NAME.lua` holding
/// `lua`, and its `README.markdown` holding `readme`.
pub fn write_module(corpus: &Path, name: &str, lua: &str, readme: &str) {
    let dir = corpus.join(format!("mod_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("mod_{name}.lua")), lua).unwrap();
    std::fs::write(dir.join("README.markdown"), readme).unwrap();
}

/// Lays out the Debian prosody-modules of the Prosody under test in the
/// upstream layout in `into` (scripts/corpus-from-debian).
pub fn debian_corpus(into: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/corpus-from-debian");
    let output = Command::new(script)
        .arg(into)
        .env("MODMAN_PROSODY_ROOT", &server().root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "corpus-from-debian: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// modman's history beside `prosody`, one JSON object per change, oldest
/// first; empty before the first.
pub fn history(prosody: &Prosody) -> Vec<Value> {
    std::fs::read_to_string(prosody.path("modman-state/history.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Every regular file under `dir`, by relative path, with its bytes.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.is_file() {
                // A socket (the daemon's, in its state directory) has no
                // bytes to read.
                out.insert(
                    path.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What a change left in the staging directory of `modules_dir`: every
/// entry but the stage the daemon makes ahead while idle (`ready`, and
/// `ready.building` while it is made).
pub fn staging_left(modules_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(modules_dir.join(".modman-staging")) else {
        return vec![];
    };
    entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "ready" && name != "ready.building")
        .collect()
}

/// Runs the modman CLI; returns (success, stdout, stderr).
pub fn cli(args: &[&str], config: &Path) -> (bool, String, String) {
    cli_binary(&Program::this_build(), args, config)
}

/// [`cli`] with another build of modman.
pub fn cli_binary(binary: &Program, args: &[&str], config: &Path) -> (bool, String, String) {
    let output = binary
        .command()
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What the CLI printed with `--json`: one object, a result or an error.
pub fn json_output(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// A modman.toml for `prosody` with `repository`, in `rooms` as `modman`.
pub fn chat_config(prosody: &Prosody, repository: &Repository, rooms: &[&str]) -> String {
    let rooms: Vec<String> = rooms.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "{}{}\n[chat]\nrooms = [{}]\nnick = \"modman\"\n",
        prosody.modman_config(),
        repository.config_section(),
        rooms.join(", ")
    )
}

/// The rows of a table the CLI printed with `--json`, keyed by the value
/// of their `key` column (`check` for check, `module` for list).
pub fn json_rows(out: &str, key: &str) -> std::collections::BTreeMap<String, Value> {
    rows_by(&json_output(out), key)
}

/// The rows of a table result (the CLI's `--json`, a chat answer's facts),
/// keyed by the value of their `key` column.
pub fn rows_by(table: &Value, key: &str) -> std::collections::BTreeMap<String, Value> {
    let rows = table["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows:\n{table}"));
    (rows.iter())
        .map(|row| {
            (
                row[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("no {key}: {row}"))
                    .to_owned(),
                row.clone(),
            )
        })
        .collect()
}

/// How `refresh` (sent in chat to modman) went for `repository`: its
/// row of the answer's facts (`outcome` is `ok` or `failed`).
pub fn refresh_row(admin: &mut Client, repository: &str) -> Value {
    let answer = admin.chat_json(COMPONENT, "refresh");
    rows_by(&answer, "repository")
        .remove(repository)
        .unwrap_or_else(|| panic!("no row for {repository}: {answer}"))
}

/// The modman.toml section naming the LuaRocks server at `url` as the
/// repository `community` (Prosody's community repository's shape).
pub fn luarocks_section(url: &str) -> String {
    format!("\n[[repositories]]\nname = \"community\"\nurl = \"{url}\"\nkind = \"luarocks\"\n")
}

/// Writes `prosody`'s modman.toml with `repository` as its one repository,
/// for tests that drive modman from its CLI; returns its path.
pub fn cli_config(prosody: &Prosody, repository: &Repository) -> PathBuf {
    let config = prosody.path("modman.toml");
    std::fs::write(
        &config,
        prosody.modman_config() + &repository.config_section(),
    )
    .unwrap();
    config
}

/// modman serving `repository`, and an admin who has refreshed from it.
pub fn modman_with(prosody: &Prosody, repository: &Repository) -> (Modman, Client) {
    let modman = Modman::start(
        prosody,
        &(prosody.modman_config() + &repository.config_section()),
    );
    let mut admin = Client::connect(prosody, ADMIN);
    assert_eq!(
        last(&admin.run_steps("refresh", json!([])))["status"],
        "completed"
    );
    (modman, admin)
}

/// The reply of the last step of a command run.
pub fn last(run: &Value) -> &Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.last())
        .unwrap_or_else(|| panic!("no steps: {run}"))
}

/// The whole summary of a result: a note is one short line, so where
/// the summary is longer a table carries it whole in its instructions.
pub fn summary(step: &Value) -> String {
    match step["form"]["instructions"].as_str() {
        Some(whole) if !whole.is_empty() => whole.to_owned(),
        _ => step["notes"][0][1].as_str().unwrap_or_default().to_owned(),
    }
}

/// Appends `text` to the file at `path`.
pub fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}
