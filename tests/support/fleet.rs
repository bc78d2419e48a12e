//! A fleet of private Prosody servers federated over s2s, each with its
//! own modman, for the tests of modman across servers.
//!
//! s2s finds a server on port 5269 of its domain's address (no SRV records
//! here), and another Prosody on this machine may hold `[::]:5269`, so each
//! fleet lives in a network namespace of its own that the harness makes
//! and deletes: every process of the fleet (the Prosodys, the modmans, the
//! slixmpp clients) runs inside it, on loopback addresses `127.0.0.2`,
//! `.3`... with Prosody's standard ports, and nothing of it is reachable
//! from the machine's own network, nor anything of the machine from it.
//!
//! Names resolve through a private hosts file that Prosody's resolver
//! (libunbound) reads directly (`unbound = { hoststxt = ... }`); the `.test`
//! top-level domain is a static local zone of libunbound, so its SRV
//! queries fail at once and Prosody falls back to the address, port 5269.
//! The links are plaintext and authenticated by dialback, with no
//! certificates: enough for tests on loopback, never for production.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use super::{server, wait_for, Client, Modman, Prosody, PASSWORD, SECRET};

/// Prosody's standard ports, which s2s relies on; free inside the fleet's
/// own network namespace whoever holds them outside.
const C2S_PORT: u16 = 5222;
const S2S_PORT: u16 = 5269;
const COMPONENT_PORT: u16 = 5347;
const HTTP_PORT: u16 = 5280;
const HTTPS_PORT: u16 = 5281;

/// A network namespace this harness made, deleted on drop (also when a
/// test panics). Its name is unique to this process and fleet, as tests
/// run in parallel threads and other test binaries run at the same time.
pub struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Netns {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "modman-fleet-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let netns = Netns { name };
        run_ok(&mut netns.wrap(Command::new("ip").args(["link", "set", "lo", "up"])));
        netns
    }

    /// `command`, run inside this namespace. `ip netns exec` execs it, so
    /// the child's process id is the command's own.
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", &self.name])
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }

    /// Whether something inside the namespace accepts on `ip:port`.
    fn accepts(&self, ip: &str, port: u16) -> bool {
        self.wrap(
            Command::new("bash")
                .arg("-c")
                .arg(format!("exec 3<>/dev/tcp/{ip}/{port}")),
        )
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ok(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One server of a fleet: its Prosody and, once started, its modman.
pub struct Member {
    /// Its domain, such as `b.test`.
    pub domain: String,
    /// Its own loopback address inside the fleet's namespace.
    pub ip: String,
    /// The admin account on this server (`admin@<domain>`).
    pub admin: String,
    /// A second account that is no admin anywhere (`user@<domain>`).
    pub user: String,
    pub prosody: Prosody,
    pub modman: Option<Modman>,
}

impl Member {
    /// modman's component JID on this server.
    pub fn component(&self) -> String {
        format!("modman.{}", self.domain)
    }

    /// This server's MUC service.
    pub fn conference(&self) -> String {
        format!("conference.{}", self.domain)
    }

    /// A modman.toml for this server: `admins` are this server's own,
    /// and modman serves `rooms` under `nick`. `extra` is appended.
    pub fn modman_config(
        &self,
        admins: &[&str],
        rooms: &[&str],
        nick: &str,
        extra: &str,
    ) -> String {
        let dir = self.prosody.dir.path().display();
        format!(
            "admins = {admins}\nstate_dir = \"{dir}/modman-state\"\n\n\
             [component]\njid = \"{jid}\"\nserver = \"{ip}:{COMPONENT_PORT}\"\nsecret = \"{SECRET}\"\n\n\
             [prosody]\nconfig = \"{dir}/prosody.cfg.lua\"\nmodules_dir = \"{dir}/modules\"\n\
             managed_config = \"{dir}/modman.cfg.lua\"\nadmin_socket = \"{dir}/data/prosody.sock\"\n\
             builtin_modules = \"{builtin}\"\n\n\
             [chat]\nrooms = {rooms}\nnick = \"{nick}\"\n{extra}",
            admins = json!(admins),
            jid = self.component(),
            ip = self.ip,
            builtin = server().builtin_modules().display(),
            rooms = json!(rooms),
        )
    }
}

/// Several Prosody servers `a.test`, `b.test`... federated over s2s in a
/// network namespace of their own. Dropping it stops every process of the
/// fleet, then deletes the namespace.
pub struct Fleet {
    pub members: Vec<Member>,
    /// Holds the hosts file every server resolves the others with.
    _names: tempfile::TempDir,
    /// Dropped last: the processes above are gone by then.
    pub netns: Netns,
}

impl Fleet {
    /// Starts `count` servers (at most 26), named `a.test`, `b.test`...,
    /// and waits until each listens for clients, servers and components.
    pub fn start(count: usize) -> Fleet {
        assert!((1..=26).contains(&count), "a fleet has 1 to 26 servers");
        let netns = Netns::create();
        let names = server().tempdir("modman-fleet-names-");
        let hosts = names.path().join("hosts");
        let domains: Vec<(String, String)> = (0..count)
            .map(|i| {
                let letter = char::from(b'a' + u8::try_from(i).unwrap());
                (format!("{letter}.test"), format!("127.0.0.{}", i + 2))
            })
            .collect();
        let mut lines = String::from("127.0.0.1 localhost\n");
        for (domain, ip) in &domains {
            lines += &format!("{ip} {domain} conference.{domain} modman.{domain}\n");
        }
        std::fs::write(&hosts, lines).unwrap();
        let mut members = Vec::new();
        for (domain, ip) in domains {
            members.push(start_member(&netns, &hosts, domain, ip));
        }
        for member in &members {
            for port in [C2S_PORT, S2S_PORT, COMPONENT_PORT] {
                wait_for(
                    &format!("{} to listen on port {port}", member.domain),
                    || netns.accepts(&member.ip, port).then_some(()),
                );
            }
            let socket = member.prosody.path("data/prosody.sock");
            wait_for(&format!("{}'s admin socket", member.domain), || {
                std::os::unix::net::UnixStream::connect(&socket)
                    .ok()
                    .map(|_| ())
            });
        }
        Fleet {
            members,
            _names: names,
            netns,
        }
    }

    /// The member whose domain is `domain`.
    pub fn member(&self, domain: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.domain == domain)
            .unwrap_or_else(|| panic!("no server {domain} in the fleet"))
    }

    fn member_mut(&mut self, domain: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.domain == domain)
            .unwrap_or_else(|| panic!("no server {domain} in the fleet"))
    }

    /// Copies module `name` of the Debian corpus into `domain`'s module
    /// directory by hand, as an admin would without modman.
    pub fn place_module(&self, domain: &str, name: &str) {
        let from = super::corpus_module(name);
        let into = self.member(domain).prosody.modules_dir().join(name);
        std::fs::create_dir_all(&into).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
        }
    }

    /// Serves `repository` inside the fleet's namespace (on 127.0.0.1 of
    /// the namespace, its own port there), where every modman of the fleet
    /// reaches it, instead of on the machine's loopback.
    pub fn serve_repository(&self, repository: &mut super::Repository) {
        repository.stop();
        let mut python = Command::new("/usr/bin/python3");
        python
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(repository.served())
            .arg(repository.port.to_string());
        let child = self
            .netns
            .wrap(&python)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 serves the repository");
        repository.server = Some(child);
        wait_for("the repository's HTTP server in the fleet", || {
            self.netns
                .accepts("127.0.0.1", repository.port)
                .then_some(())
        });
    }

    /// Kills `domain`'s Prosody (SIGKILL): its server is gone from the
    /// fleet, with no goodbye to anyone.
    pub fn stop_server(&mut self, domain: &str) {
        self.member_mut(domain).prosody.stop();
    }

    /// Starts modman on `domain` with `config` and waits until it answers
    /// disco#info through its Prosody.
    pub fn start_modman(&mut self, domain: &str, config: &str) {
        let member = self.member(domain);
        let binary = Command::new(env!("CARGO_BIN_EXE_modman"));
        let modman = Modman::spawn(&member.prosody, config, binary, |command| {
            self.netns.wrap(&command)
        });
        let component = member.component();
        let mut probe = self.client(&member.user);
        let request = format!(
            "<iq type='get' to='{component}' id='probe'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        );
        wait_for(&format!("{component} to answer"), || {
            (probe.iq(&request).attr("type") == Some("result")).then_some(())
        });
        self.member_mut(domain).modman = Some(modman);
    }

    /// A slixmpp client logged in as `jid` (an account of a fleet server),
    /// inside the fleet's namespace.
    pub fn client(&self, jid: &str) -> Client {
        let domain = jid.split_once('@').map_or(jid, |(_, d)| d);
        let member = self.member(domain);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/xmpp_client.py");
        let mut python = Command::new("/usr/bin/python3");
        python
            .arg(script)
            .args([jid, PASSWORD, &member.ip, &C2S_PORT.to_string()]);
        Client::spawn(self.netns.wrap(&python), jid)
    }
}

/// Writes the config of server `domain` on `ip`, registers its accounts
/// and starts its Prosody inside `netns`.
fn start_member(netns: &Netns, hosts: &Path, domain: String, ip: String) -> Member {
    let dir = server().tempdir("modman-fleet-");
    let mut prosody = Prosody {
        dir,
        c2s_port: C2S_PORT,
        component_port: COMPONENT_PORT,
        http_port: HTTP_PORT,
        https_port: HTTPS_PORT,
        child: None,
    };
    for sub in ["data", "certs", "modules"] {
        std::fs::create_dir_all(prosody.path(sub)).unwrap();
    }
    std::fs::write(prosody.path("modman.cfg.lua"), "").unwrap();
    std::fs::write(
        prosody.config_path(),
        prosody_config(prosody.dir.path(), hosts, &domain, &ip),
    )
    .unwrap();
    let (admin, user) = (format!("admin@{domain}"), format!("user@{domain}"));
    for account in [&admin, &user] {
        let (name, host) = account.split_once('@').unwrap();
        let output = super::prosodyctl(&prosody, &["register", name, host, PASSWORD]);
        assert!(
            output.status.success(),
            "prosodyctl register {account} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let log = std::fs::File::create(prosody.path("prosody.stdout")).unwrap();
    let mut launch = server().command("prosody");
    launch.arg("-F").arg("--config").arg(prosody.config_path());
    let child = netns
        .wrap(&launch)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("prosody starts");
    prosody.child = Some(child);
    Member {
        domain,
        ip,
        admin,
        user,
        prosody,
        modman: None,
    }
}

/// The Prosody config of one fleet server: every listener on its own
/// address; s2s without TLS, authenticated by dialback; rooms that need
/// no configuring; modman's component and managed file as in the
/// single-server tests.
fn prosody_config(dir: &Path, hosts: &Path, domain: &str, ip: &str) -> String {
    let dir = dir.display();
    let hosts = hosts.display();
    format!(
        r#"-- A fleet server for modman's tests, written by tests/support/fleet.rs.
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
certificates = "{dir}/certs"
log = {{ info = "{dir}/prosody.log" }}
interfaces = {{ "{ip}" }}
local_interfaces = {{ "{ip}" }}
c2s_interfaces = {{ "{ip}" }}
c2s_ports = {{ {C2S_PORT} }}
c2s_direct_tls_ports = {{ }}
s2s_interfaces = {{ "{ip}" }}
s2s_ports = {{ {S2S_PORT} }}
s2s_direct_tls_ports = {{ }}
component_interfaces = {{ "{ip}" }}
component_ports = {{ {COMPONENT_PORT} }}
http_interfaces = {{ "{ip}" }}
http_ports = {{ {HTTP_PORT} }}
https_interfaces = {{ "{ip}" }}
https_ports = {{ {HTTPS_PORT} }}
-- Without TCP_NODELAY, delayed ACKs stall each exchange by 40 ms.
network_settings = {{ nagle = false }}
-- Names from the fleet's hosts file only; nothing is asked of any DNS server.
unbound = {{ hoststxt = "{hosts}"; resolvconf = false }}
s2s_require_encryption = false
s2s_secure_auth = false
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
plugin_paths = {{ "{dir}/modules" }}
modules_enabled = {{ "roster", "saslauth", "disco", "ping", "dialback", "version", "admin_shell" }}

VirtualHost "{domain}"

Component "modman.{domain}"
    component_secret = "{SECRET}"

Component "conference.{domain}" "muc"
    muc_room_locking = false
    restrict_room_creation = false

Include "{dir}/modman.cfg.lua"
"#
    )
}

impl Client {
    /// Runs command `node` of the modman at `to`, submitting one form of
    /// `steps` per step while the command is executing.
    pub fn run_at(&mut self, to: &str, node: &str, steps: Value) -> Value {
        self.request(json!({"op": "run", "to": to, "node": node, "steps": steps}))
    }
}
