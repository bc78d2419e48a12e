//! `modman repo keygen|build|verify` on the real prosody-modules corpus
//! from Debian, through the real binary, as an admin would run them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{server, snapshot, Version};

fn modman(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temp dir holding a key pair: (dir, key path, public key text).
fn keyed_dir() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let output = modman(&["repo", "keygen", "--out", key.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    (dir, key, text(&output.stdout).trim().to_owned())
}

fn corpus(into: &Path) -> PathBuf {
    let tree = into.join("corpus");
    support::debian_corpus(&tree);
    tree
}

fn build(tree: &Path, out: &Path, key: &Path) -> Output {
    build_command(tree, out, key).output().unwrap()
}

fn build_command(tree: &Path, out: &Path, key: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modman"));
    command.args([
        "repo",
        "build",
        "--from",
        tree.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--name",
        "local",
    ]);
    command
}

fn verify(dir: &Path, public: &str) -> Output {
    modman(&[
        "repo",
        "verify",
        dir.to_str().unwrap(),
        "--public-key",
        public,
    ])
}

/// `repo verify --json`: whether it passed, and each problem as (file,
/// kind).
fn problems(dir: &Path, public: &str) -> (bool, Vec<(String, String)>) {
    let output = modman(&[
        "repo",
        "verify",
        dir.to_str().unwrap(),
        "--public-key",
        public,
        "--json",
    ]);
    let found: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&output.stdout)));
    let problems = found["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems list: {found}"))
        .iter()
        .map(|p| {
            let fact = |key: &str| p[key].as_str().unwrap_or_default().to_owned();
            (fact("file"), fact("kind"))
        })
        .collect();
    (output.status.success(), problems)
}

fn module<'a>(index: &'a Value, name: &str) -> &'a Value {
    index["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in index"))
}

#[test]
fn the_debian_corpus_builds_verifies_and_describes_real_modules() {
    let (dir, key, public) = keyed_dir();
    let tree = corpus(dir.path());
    let repo = dir.path().join("repo");
    let output = build(&tree, &repo, &key);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = verify(&repo, &public);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).starts_with("OK "),
        "{}",
        text(&output.stdout)
    );

    let index: Value =
        serde_json::from_slice(&std::fs::read(repo.join("index.json")).unwrap()).unwrap();
    // Signed for the repository it was built for, which verify shows with
    // the serial.
    assert_eq!(index["repository"], "local");
    assert!(
        text(&output.stdout).contains(&format!(
            "repository local, serial {},",
            index["serial"].as_u64().unwrap()
        )),
        "{}",
        text(&output.stdout)
    );
    let modules = index["modules"].as_array().unwrap();
    let in_tree = std::fs::read_dir(&tree).unwrap().count();
    assert_eq!(
        modules.len(),
        in_tree,
        "every module of the corpus is in the index"
    );

    let battery = module(&index, "csi_battery_saver");
    let deps: Vec<(String, String)> = battery["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        deps.contains(&("track_muc_joins".into(), "community".into())),
        "{deps:?}"
    );
    assert!(deps.contains(&("csi".into(), "builtin".into())), "{deps:?}");
    assert_eq!(
        battery["summary"],
        "CSI module to save battery on mobile devices"
    );

    // A multi-file module: the archive holds every file of the directory.
    let firewall = module(&index, "firewall");
    let mut expected: Vec<String> = snapshot(&tree.join("mod_firewall"))
        .keys()
        .map(|p| p.display().to_string())
        .collect();
    expected.sort();
    assert!(expected.len() > 5);
    assert_eq!(firewall["files"], serde_json::json!(expected));
    assert_eq!(firewall["stage"], "alpha");
    assert_eq!(firewall["summary"], "A rule-based stanza filtering module");
    let archive = std::fs::read(repo.join(firewall["archive"].as_str().unwrap())).unwrap();
    assert_eq!(archive.len() as u64, firewall["size"].as_u64().unwrap());
    assert_eq!(modman::repo::sha256_hex(&archive), firewall["sha256"]);
    let unpacked = modman::repo::archive::read(&archive, "firewall").unwrap();
    let rules = unpacked
        .iter()
        .find(|f| f.path == "scripts/spam-blocking.pfw")
        .unwrap();
    assert_eq!(
        rules.data,
        std::fs::read(tree.join("mod_firewall/scripts/spam-blocking.pfw")).unwrap()
    );

    // The nested layout Prosody also loads (mod_x/x/mod_x.lua).
    assert_eq!(
        module(&index, "auth_dovecot")["files"][1],
        "auth_dovecot/mod_auth_dovecot.lua"
    );

    // What the README's Compatibility section says, as understood; each
    // corpus has its own shapes.
    let rows = |name: &str| -> Vec<(String, Option<bool>)> {
        module(&index, name)["compatibility"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["prosody"].as_str().unwrap().to_owned(),
                    r["works"].as_bool(),
                )
            })
            .collect()
    };
    let row = |prosody: &str, works: bool| (prosody.to_owned(), Some(works));
    // A sentence: "Should work with Prosody >= 0.11.x" (2025: "\>=").
    assert_eq!(rows("muc_rtbl"), [row("0.11 and later", true)]);
    // A bullet: "Works with 0.8.x, successive versions and trunk."
    assert_eq!(
        rows("host_guard"),
        [row("0.8 and later", true), row("trunk", true)]
    );
    let dated = match server().version {
        // 0.12's corpus: cloud_notify, built into 13 since.
        Version::V0_12 => {
            assert!(rows("cloud_notify").contains(&row("0.12", true)));
            "cloud_notify"
        }
        // The 2025 corpus: a table naming 13.0.x, and sentences.
        Version::V13 => {
            assert!(rows("cloud_notify_encrypted").contains(&row("13.0.x", true)));
            assert_eq!(
                rows("http_oauth2"),
                [row("trunk", true), row("0.12 and earlier", false)]
            );
            assert_eq!(rows("dnsbl"), [row("0.12 and later", true)]);
            "cloud_notify_encrypted"
        }
    };
    let version = module(&index, dated)["version"].as_str().unwrap();
    assert!(
        version.len() == 17 && version.as_bytes()[8] == b'.',
        "{version}"
    );
}

#[test]
fn two_builds_of_one_tree_are_byte_identical() {
    let (dir, key, _) = keyed_dir();
    let tree = corpus(dir.path());
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    // The index's serial and dates come from the build time, which
    // SOURCE_DATE_EPOCH fixes for reproducible builds.
    for out in [&first, &second] {
        let output = build_command(&tree, out, &key)
            .env("SOURCE_DATE_EPOCH", "1793491200")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let (a, b) = (snapshot(&first), snapshot(&second));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs", path.display());
    }
}

#[test]
fn one_flipped_byte_anywhere_fails_verify_and_names_the_file() {
    let (dir, key, public) = keyed_dir();
    let tree = corpus(dir.path());
    let good = dir.path().join("good");
    assert!(build(&tree, &good, &key).status.success());
    let index: Value =
        serde_json::from_slice(&std::fs::read(good.join("index.json")).unwrap()).unwrap();
    let archive = module(&index, "lastlog")["archive"]
        .as_str()
        .unwrap()
        .to_owned();

    for (file, offset) in [
        (archive.as_str(), 40),
        ("index.json", 100),
        ("index.json.sig", 5),
    ] {
        let copy = dir
            .path()
            .join(format!("tampered-{}", file.replace('/', "-")));
        let status = Command::new("cp")
            .arg("-r")
            .arg(&good)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset] ^= if file.ends_with(".sig") { 0x01 } else { 0x20 };
        std::fs::write(&path, bytes).unwrap();
        let (passed, found) = problems(&copy, &public);
        assert!(!passed, "{file}: verify passed");
        assert!(found.iter().any(|(f, _)| f == file), "{file}: {found:?}");
    }

    // The right repository under the wrong key.
    let (_other_dir, _, other_public) = keyed_dir();
    let signature = ("index.json.sig".to_owned(), "signature".to_owned());
    assert_eq!(problems(&good, &other_public), (false, vec![signature]));
    // A stray archive nobody listed.
    std::fs::write(good.join("archives/mod_evil-1.tar.gz"), b"x").unwrap();
    let stray = (
        "archives/mod_evil-1.tar.gz".to_owned(),
        "not_listed".to_owned(),
    );
    assert_eq!(problems(&good, &public), (false, vec![stray]));
}

#[test]
fn bad_trees_get_clear_messages_and_never_a_half_written_repository() {
    let (dir, key, public) = keyed_dir();
    let tree = dir.path().join("tree");
    let module_dir = |name: &str| {
        let path = tree.join(format!("mod_{name}"));
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    std::fs::write(
        module_dir("good").join("mod_good.lua"),
        "module:depends('nowhere_to_be_found')",
    )
    .unwrap();
    std::fs::write(
        module_dir("good").join("README.markdown"),
        "---\nsummary: Good\n---\nBody",
    )
    .unwrap();
    std::fs::write(module_dir("nolua").join("README.markdown"), "no code").unwrap();
    std::fs::write(module_dir("badyaml").join("mod_badyaml.lua"), "").unwrap();
    std::fs::write(
        module_dir("badyaml").join("README.markdown"),
        "---\nsummary: [oops\n---\nBody",
    )
    .unwrap();
    std::fs::write(module_dir("leak").join("mod_leak.lua"), "").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", module_dir("leak").join("passwd")).unwrap();
    std::fs::write(module_dir("pipe").join("mod_pipe.lua"), "").unwrap();
    let fifo = module_dir("pipe").join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let repo = dir.path().join("repo");
    let output = build(&tree, &repo, &key);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let warnings = text(&output.stderr);
    for expected in [
        "warning: mod_nolua: neither mod_nolua/mod_nolua.lua nor mod_nolua/nolua/mod_nolua.lua in it; skipped",
        "warning: mod_badyaml: README front matter is not valid YAML",
        "warning: mod_leak: ",
        "passwd: a symbolic link that points outside the tree",
        "warning: mod_pipe: ",
        "fifo: not a regular file or directory; skipped",
        "warning: mod_good: depends on nowhere_to_be_found, which is neither in the tree nor in",
    ] {
        assert!(warnings.contains(expected), "{expected:?} not in:\n{warnings}");
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(repo.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["badyaml", "good"]);
    assert!(verify(&repo, &public).status.success());
    let before = snapshot(&repo);

    // Whole-build failures: nothing is written, the old repository stays.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = build(&empty, &repo, &key);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("no modules found"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(snapshot(&repo), before);

    let output = build(&dir.path().join("missing"), &repo, &key);
    assert!(!output.status.success());
    assert_eq!(snapshot(&repo), before);

    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "years of work").unwrap();
    let output = build(&tree, &precious, &key);
    assert!(text(&output.stderr).contains("is not a modman repository; refusing to replace it"));
    assert_eq!(
        std::fs::read_to_string(precious.join("thesis.tex")).unwrap(),
        "years of work"
    );

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = build(&tree, &repo, &key);
    assert!(
        text(&output.stderr).contains("chmod 600"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(snapshot(&repo), before);

    // No staging directories are left behind by any of this.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".modman-repo"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_git_checkout_versions_modules_by_their_last_commit() {
    let (dir, key, _) = keyed_dir();
    let tree = dir.path().join("tree");
    for name in ["alpha", "beta"] {
        std::fs::create_dir_all(tree.join(format!("mod_{name}"))).unwrap();
        std::fs::write(tree.join(format!("mod_{name}/mod_{name}.lua")), name).unwrap();
    }
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@localhost",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&tree)
            .env("GIT_COMMITTER_DATE", "2024-05-06T07:08:09Z")
            .env("GIT_AUTHOR_DATE", "2024-05-06T07:08:09Z")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "first"]);
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(&tree)
        .output()
        .unwrap();
    let head = text(&head.stdout).trim().to_owned();

    let repo = dir.path().join("repo");
    assert!(build(&tree, &repo, &key).status.success());
    let index: Value =
        serde_json::from_slice(&std::fs::read(repo.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        module(&index, "alpha")["version"],
        format!("20240506.{head}")
    );
    assert_eq!(
        module(&index, "alpha")["archive"],
        format!("archives/mod_alpha-20240506.{head}.tar.gz")
    );
}

/// `repo build --from-debian`, the command an admin without the
/// community repository runs, builds the very index the laid-out corpus
/// gives: the same modules, versions and archives.
#[test]
fn from_debian_builds_what_the_debian_corpus_builds() {
    let (dir, key, public) = keyed_dir();
    let tree = corpus(dir.path());
    let from_tree = dir.path().join("from-tree");
    let output = build(&tree, &from_tree, &key);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let from_debian = dir.path().join("from-debian");
    let output = modman(&[
        "repo",
        "build",
        "--from-debian",
        "--debian-root",
        server().root.to_str().unwrap(),
        "--out",
        from_debian.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--name",
        "local",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(verify(&from_debian, &public).status.success());
    let modules = |repository: &Path| -> Vec<(Value, Value, Value)> {
        let index: Value =
            serde_json::from_slice(&std::fs::read(repository.join("index.json")).unwrap()).unwrap();
        index["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].clone(), m["version"].clone(), m["sha256"].clone()))
            .collect()
    };
    let built = modules(&from_debian);
    assert!(built.len() > 50, "{} modules", built.len());
    assert_eq!(built, modules(&from_tree));
}
