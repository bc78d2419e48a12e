//! The `modman` command line: `run` serves XMPP; the other subcommands
//! run the same operations from a shell, rendered as plain text, and
//! `repo` builds and checks repositories.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use modman::access::Actor;
use modman::config::Config;
use modman::engine::Opening;
use modman::local::{self, ask::Handover, Answer};
use modman::ops::{self, Context};
use modman::xmpp::probe::HandshakeProbe;
use modman::xmpp::shutdown::Exit;

/// `println!` that ends the program quietly when stdout is closed, as in
/// `modman list | head`, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

// After `out!`, which its files use.
mod cli;
use cli::{manuals, running};

/// Manage Prosody modules over XMPP.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "modman installs, updates, removes, enables and disables Prosody's modules on this host, \
                  asked over XMPP (ad-hoc commands and chat, as an external component of Prosody) \
                  or from this command line. Each change is one transaction: if a step fails, \
                  modman undoes the rest and Prosody is left as it was.\n\n\
                  First steps: `modman setup --domain example.org` prints what it would change, \
                  `--write` applies it; then `systemctl enable --now modman` and \
                  `modman check`. `modman setup --undo` takes it out again. \
                  The admin's guide: /usr/share/doc/modman/README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to Prosody as a component and serve commands until SIGINT or SIGTERM; SIGHUP applies a changed modman.toml by a restart in place.
    Run(ConfigArg),
    /// Make the running `modman run` for a config read it again (SIGHUP): if it changed, modman finishes the changes in flight and restarts in place, same PID, to apply it.
    Reload {
        /// The modman.toml the running modman was started with.
        #[arg(long, short, default_value = "/etc/modman/modman.toml")]
        config: PathBuf,
    },
    /// Build, sign and verify module repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Print the lines prosody.cfg.lua needs and a ready modman.toml for a domain; --write applies them; --undo takes them out again.
    Setup {
        /// The XMPP domain to manage, such as example.org.
        #[arg(long, required_unless_present = "undo")]
        domain: Option<String>,
        /// The first admin (default: admin@DOMAIN).
        #[arg(long)]
        admin: Option<String>,
        #[arg(long, default_value = "/etc/prosody/prosody.cfg.lua")]
        prosody_config: PathBuf,
        /// Where modman.toml goes.
        #[arg(long, default_value = "/etc/modman/modman.toml")]
        config: PathBuf,
        /// Prosody's data directory (its admin socket; modman's modules go in DIR/modman).
        #[arg(long, default_value = "/var/lib/prosody")]
        data_dir: PathBuf,
        /// modman's own state.
        #[arg(long, default_value = "/var/lib/modman")]
        state_dir: PathBuf,
        /// The LuaRocks server modman.toml names as the first source.
        #[arg(long, default_value = modman::setup::COMMUNITY, conflicts_with = "no_repository")]
        repository: String,
        /// Name no repository in modman.toml yet.
        #[arg(long)]
        no_repository: bool,
        /// The fleet's room this modman joins, nick = DOMAIN (such as ops@conference.a.example.org).
        #[arg(long, value_name = "ROOM")]
        fleet_room: Option<String>,
        /// Another server's modman this one asks and takes relayed requests from (repeat for each).
        #[arg(long = "peer", value_name = "JID")]
        peers: Vec<String>,
        /// Apply: back up and edit prosody.cfg.lua, create the directories, write modman.toml.
        #[arg(long, conflicts_with = "undo")]
        write: bool,
        /// Take out of prosody.cfg.lua every line setup wrote (and nothing else), and unload what modman enabled; says what is left and how to remove it.
        #[arg(long)]
        undo: bool,
        /// Print what setup changed, or would change, as one JSON object.
        #[arg(long, conflicts_with = "undo")]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Path to modman.toml.
    #[arg(long, short)]
    config: PathBuf,
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Create a signing key (mode 0600) and print its public key for modman.toml.
    Keygen {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a signed repository from a prosody-modules tree (mod_x/mod_x.lua, mod_x/README.markdown), or from Debian's prosody-modules package.
    Build {
        /// The tree to build from.
        #[arg(
            long,
            required_unless_present = "from_debian",
            conflicts_with = "from_debian"
        )]
        from: Option<PathBuf>,
        /// Build from the modules Debian's prosody-modules package installed on this system, with their READMEs.
        #[arg(long)]
        from_debian: bool,
        /// With --from-debian: the root of the Debian system to read, such as a chroot.
        #[arg(long, requires = "from_debian", default_value = "/")]
        debian_root: PathBuf,
        /// The repository directory to create or replace; serve it with any static HTTP server.
        #[arg(long)]
        out: PathBuf,
        /// The repository's name, as the [[repositories]] entry in each modman.toml names it; signed into the index, so another repository's index signed with the same key is refused.
        #[arg(long)]
        name: String,
        /// The private key from `modman repo keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Prosody's own modules, to tell built-in dependencies from missing ones.
        #[arg(long, default_value = "/usr/lib/prosody/modules")]
        builtin_modules: PathBuf,
        /// Days clients may use the index before they refuse it as stale; rebuild before then.
        #[arg(long, value_name = "DAYS", default_value_t = modman::repo::build::DEFAULT_VALID_DAYS)]
        valid_for: u32,
        /// Earlier builds of each module to keep serving, listed in the index, so admins can install one (`install x@VERSION`).
        #[arg(long, value_name = "COUNT", default_value_t = modman::repo::build::DEFAULT_KEEP as u64, value_parser = clap::value_parser!(u64).range(0..=32))]
        keep: u64,
    },
    /// Turn a LuaRocks server (such as Prosody's community repository) into a signed repository.
    ///
    /// A module whose newest rock is refused is left out (keeping its last good copy when the
    /// mirror already has one) and the rest is published and signed. Exit status: 0 when every
    /// module was mirrored, 3 when the mirror was published without some (each named in the
    /// output with why), 1 when nothing was written.
    Mirror {
        /// The LuaRocks server: HTTPS, or plain HTTP to this machine only.
        #[arg(long)]
        from: url::Url,
        /// The repository directory to create or replace; rocks already fetched are kept beside it in .DIR.rocks/.
        #[arg(long)]
        out: PathBuf,
        /// The repository's name, as the [[repositories]] entry in each modman.toml names it (see repo build).
        #[arg(long)]
        name: String,
        /// The private key from `modman repo keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Prosody's own modules, to tell built-in dependencies from missing ones.
        #[arg(long, default_value = "/usr/lib/prosody/modules")]
        builtin_modules: PathBuf,
        /// Longest one download may take.
        #[arg(long, default_value_t = 30)]
        timeout_seconds: u64,
        /// Days clients may use the index before they refuse it as stale; mirror again before then.
        #[arg(long, value_name = "DAYS", default_value_t = modman::repo::build::DEFAULT_VALID_DAYS)]
        valid_for: u32,
        /// Earlier versions of each module the server lists to mirror too, listed in the index (as repo build --keep).
        #[arg(long, value_name = "COUNT", default_value_t = modman::repo::build::DEFAULT_KEEP as u64, value_parser = clap::value_parser!(u64).range(0..=32))]
        keep: u64,
        /// Print what was mirrored as JSON: counts, and each module left out by package.
        #[arg(long)]
        json: bool,
    },
    /// Mark versions of a module as insecure or withdrawn: the index gains the advisory and is signed again, and every modman that refreshes tells its admins and rooms.
    ///
    /// An advisory for the same module and versions replaces the earlier one; later builds keep it.
    Advise {
        /// The repository directory (as `repo build --out` made it).
        dir: PathBuf,
        /// The module, with or without `mod_`.
        module: String,
        /// The versions concerned, exactly as the index names them (`modman info MODULE` shows the installed one).
        #[arg(required = true)]
        versions: Vec<String>,
        /// What is wrong with them.
        #[arg(long, value_parser = ["insecure", "withdrawn"])]
        kind: String,
        /// Why, in a sentence or two; shown to admins as it is.
        #[arg(long)]
        reason: String,
        /// The version that fixes it, if there is one.
        #[arg(long, value_name = "VERSION")]
        fixed: Option<String>,
        /// The repository's private key, the one `repo build` signed it with.
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a repository's signature and every archive against its index.
    Verify {
        /// The repository directory.
        dir: PathBuf,
        /// The public key printed by keygen, or a file holding it.
        #[arg(long)]
        public_key: String,
        /// Print what was found as JSON: the index's name, serial and
        /// dates, and each problem by file and kind.
        #[arg(long)]
        json: bool,
    },
}

/// The whole command line: what [`documented`] describes, and the hidden
/// `manuals` the package build runs.
fn cli() -> clap::Command {
    documented().subcommand(manuals::command())
}

/// The command line a user is shown: the subcommands declared here, one
/// per operation from its [`ops::Spec`], and the service's flag on
/// `check`. `--help`, the manual pages and the shell completions are all
/// rendered from this one definition, which leaves out the package
/// build's `manuals`, so no completion offers it.
fn documented() -> clap::Command {
    ops::all()
        .iter()
        .fold(Cli::command(), |cli, op| cli.subcommand(operation(*op)))
}

/// The subcommand of `op`, with the service's flag on `check`.
fn operation(op: &dyn ops::Operation) -> clap::Command {
    let command = cli::ops::command(op.spec());
    if op.spec().node != <ops::check::Check as ops::Command>::SPEC.node {
        return command;
    }
    command.arg(
        clap::Arg::new(AT_START)
            .long("at-start")
            .action(clap::ArgAction::SetTrue)
            .help("As the service runs it before starting modman: a repository that cannot be read is a warning, not a failure."),
    )
}

/// What the command line says, read by [`cli`], or for an operation
/// (`modman install ...`, the command run most) by its subcommand alone
/// under the same root, which reads it the same way (a unit test holds
/// the two together): building every subcommand's arguments and help
/// took 0.28 ms of a 5 ms install handed to the daemon.
fn command_line(args: Vec<std::ffi::OsString>) -> Result<clap::ArgMatches, clap::Error> {
    let named = args.get(1).and_then(|arg| arg.to_str()).and_then(ops::find);
    match named {
        Some(op) => clap::Command::new(env!("CARGO_BIN_NAME"))
            .subcommand(operation(op))
            .try_get_matches_from(args),
        None => cli().try_get_matches_from(args),
    }
}

fn main() -> ExitCode {
    let matches = command_line(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    // The daemon's allocator set-up, before any thread starts. Not for
    // the other commands: they are short, and `repo build` packs on
    // every core, whose threads would wait on each other in one arena.
    if matches.subcommand_name() == Some("run") {
        modman::allocator::tune();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: under systemd the
        // journal would keep them as garbage.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match matches.subcommand() {
        Some((node, args)) if ops::find(node).is_some() => {
            runtime(Flavor::OneCommand).and_then(|runtime| {
                let result = runtime.block_on(run_operation(node, args));
                // The operation has ended whole: its change committed and
                // logged, its answer printed, the health watches it
                // started waited for. Left are idle threads (an fsync
                // barrier's, kept alive for reuse) and an idle HTTP
                // connection, which a plain drop would join and close
                // one by one: about a millisecond of a 10 ms install.
                runtime.shutdown_background();
                result
            })
        }
        Some((manuals::COMMAND, args)) => {
            manuals::write(documented(), manuals::out(args)).map(|()| ExitCode::SUCCESS)
        }
        _ => match Cli::from_arg_matches(&matches) {
            Ok(cli) => {
                runtime(Flavor::Service).and_then(|runtime| runtime.block_on(dispatch(cli.command)))
            }
            Err(e) => e.exit(),
        },
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the async runtime serves.
enum Flavor {
    /// One operation from the shell: one request, one answer, nothing
    /// else to run beside it, so all on this thread (file work still goes
    /// to the blocking pool). Starting no worker threads is a good part
    /// of a fast `modman install`.
    OneCommand,
    /// `modman run` and the repository tools: many tasks at once, on a
    /// worker per core; an idle worker hands freed memory back.
    Service,
}

fn runtime(flavor: Flavor) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = match flavor {
        Flavor::OneCommand => tokio::runtime::Builder::new_current_thread(),
        Flavor::Service => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .on_thread_park(modman::allocator::on_idle)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

async fn dispatch(command: Command) -> Result<ExitCode, String> {
    let done = match command {
        Command::Run(ConfigArg { config }) => {
            let config_path = config;
            let (ctx, config) = open(&config_path)?;
            let admins: Vec<String> = config.admins.iter().map(|jid| jid.to_string()).collect();
            tracing::info!(
                "modman {} starting; admins: {}",
                env!("CARGO_PKG_VERSION"),
                admins.join(", ")
            );
            say_repositories(&ctx);
            match modman::xmpp::component::run(ctx, &config_path)
                .await
                .map_err(|e| format!("cannot listen for signals: {e}"))?
            {
                Exit::Stopped => Ok(()),
                Exit::Reload(parts) => Err(start_again(&parts)),
            }
        }
        Command::Reload { config } => running::reload(&config),
        Command::Repo(command) => return repo(command).await,
        Command::Setup {
            domain,
            admin,
            prosody_config,
            config,
            data_dir,
            state_dir,
            repository,
            no_repository,
            fleet_room,
            peers,
            write,
            undo,
            json,
        } => {
            let Some(domain) = domain.filter(|_| !undo) else {
                return setup_undo(&prosody_config, &config, &data_dir, &state_dir)
                    .await
                    .map(|()| ExitCode::SUCCESS);
            };
            let options = modman::setup::Options {
                domain,
                admin,
                prosody_config,
                modman_config: config,
                data_dir,
                state_dir,
                source: match no_repository {
                    true => modman::setup::Source::None,
                    false => modman::setup::Source::LuaRocks(repository),
                },
                fleet: modman::setup::Fleet {
                    room: fleet_room,
                    peers,
                },
            };
            setup(&options, write, json)
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// After a reload's drain: this binary again, with the same arguments, in
/// this process (same PID, so systemd keeps tracking it; every file and
/// socket modman opened is close-on-exec). It starts as any start does,
/// with the new modman.toml. Returns only if that could not be done.
fn start_again(parts: &[modman::config::Part]) -> String {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return format!(
                "cannot find modman's own executable to start it again with the new modman.toml ({e}); modman has stopped, every request answered: start it again (systemctl start modman)"
            )
        }
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    tracing::info!(
        "reload: applying {}: starting {} again in this process (PID {})",
        modman::xmpp::reload::names(parts),
        exe.display(),
        std::process::id()
    );
    // An ignored signal stays ignored across exec: a SIGHUP before the
    // new process listens for it is dropped instead of ending modman.
    // SAFETY: sets a disposition; no handler of ours runs from it.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    let e = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .exec();
    format!(
        "cannot start {} again to apply modman.toml: {e}; modman has stopped, every request answered: start it again (systemctl start modman)",
        exe.display()
    )
}

fn setup(options: &modman::setup::Options, write: bool, json: bool) -> Result<(), String> {
    let setup = modman::setup::plan(options)?;
    let old = std::fs::read_to_string(&options.prosody_config).unwrap_or_default();
    let backup = match write {
        true => Some(modman::setup::write(options, &setup)?),
        false => None,
    };
    if json {
        out!("{}", setup.to_json(options, &old, backup.as_deref()));
        return Ok(());
    }
    if let Some(backup) = backup {
        out!(
            "Backed up {} to {}.",
            options.prosody_config.display(),
            backup.display()
        );
    } else {
        out!(
            "modman setup for {} (nothing was written; add --write to apply this).",
            options.domain
        );
    }
    out!("\nIn {}:", options.prosody_config.display());
    for change in &setup.changes {
        out!("  - {change}");
    }
    out!();
    for line in setup.added_lines(&old) {
        out!("  + {line}");
    }
    out!(
        "\n{} (mode 0600, it holds the secret):\n",
        options.modman_config.display()
    );
    for line in setup.modman_toml.lines() {
        out!("  {}", setup.hidden(line));
    }
    out!(
        "\nThe component secret is in {} and {} only, never printed{}.",
        options.modman_config.display(),
        options.prosody_config.display(),
        match write {
            true => "",
            false => "; --write makes a new one",
        }
    );
    out!(
        "\nThen: restart Prosody, run `modman check --config {}`, and start modman (systemctl enable --now modman).",
        options.modman_config.display()
    );
    Ok(())
}

/// The flag `check` takes when the service runs it before modman starts.
const AT_START: &str = "at_start";

/// `setup --undo`: where modman.toml says modman's files are (setup's
/// places under `data_dir` and `state_dir` if it cannot be read), what was
/// taken out, and what is left with how to remove it.
async fn setup_undo(
    prosody_config: &Path,
    modman_toml: &Path,
    data_dir: &Path,
    state_dir: &Path,
) -> Result<(), String> {
    use modman::setup::undo;
    let defaults = modman::setup::Paths::under(data_dir);
    let options = match Config::load(modman_toml) {
        Ok(config) => undo::UndoOptions {
            prosody_config: prosody_config.to_owned(),
            managed_config: config.prosody.managed_config.clone(),
            admin_socket: config.prosody.admin_socket.clone(),
            left: vec![
                config.prosody.modules_dir.clone(),
                config.prosody.managed_config.clone(),
                config.state_dir.clone(),
                modman_toml.to_owned(),
            ],
        },
        Err(e) => {
            eprintln!(
                "note: {e}; using setup's places under {}",
                data_dir.display()
            );
            undo::UndoOptions {
                prosody_config: prosody_config.to_owned(),
                managed_config: defaults.managed_config.clone(),
                admin_socket: defaults.admin_socket.clone(),
                left: vec![
                    defaults.modules_dir,
                    defaults.managed_config,
                    state_dir.to_owned(),
                ],
            }
        }
    };
    let done = undo::undo(&options).await?;
    out!(
        "Took modman setup's lines out of {} ({} lines; backup: {}): Prosody no longer Includes {} nor searches modman's module directory.",
        prosody_config.display(),
        done.lines,
        done.backup.display(),
        options.managed_config.display()
    );
    for (module, host) in &done.unloaded {
        out!("  unloaded {module} on {host}");
    }
    for note in &done.notes {
        out!("  note: {note}");
    }
    let left: Vec<&Path> = options
        .left
        .iter()
        .map(PathBuf::as_path)
        .filter(|p| p.exists())
        .collect();
    if !left.is_empty() {
        out!("\nLeft in place (the modules modman installed, its state and history, its config):");
        for path in &left {
            out!("  {}", path.display());
        }
        out!(
            "Remove them, once you no longer want them back, with: rm -r {}",
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    out!("\nThen: systemctl disable --now modman; systemctl restart prosody (its modman component goes then); apt-get purge modman removes the package.");
    Ok(())
}

/// Runs operation `node` with the arguments clap read for it, and prints
/// its text rendering: handed to the daemon serving the same modman.toml
/// if one takes it (see [`modman::local`]), or here. A table of checks
/// that found a problem exits non-zero without a further message: its
/// note already said it.
async fn run_operation(node: &str, args: &clap::ArgMatches) -> Result<ExitCode, String> {
    let op = ops::find(node).ok_or_else(|| format!("no operation `{node}`"))?;
    let config: &PathBuf = args.get_one("config").ok_or("--config is required")?;
    let config = load(config)?;
    let json = args.get_flag("json");
    let fields = cli::ops::fields(op.spec(), args);
    // Checked here first, so a mistake is said without a round trip; the
    // daemon checks again what it is handed.
    let input = match ops::Input::check(op.spec().params, fields.clone()) {
        Ok(input) => input,
        Err(e) => return print_answer(Answer::failed(e, json), None).await,
    };
    // A debug build told to pause makes its change here, where the pause is.
    let request = (local::hands_over(node) && !modman::engine::faults::pausing_here())
        .then(|| local::Request::new(&config, node, fields, json))
        .flatten();
    if let Some(request) = request {
        // The daemon makes the change whatever becomes of this process:
        // a stop is told so, a second one ends the waiting.
        let mut stops = 0;
        let offered = Stops::outlast(local::ask::hand_over(&config, &request), || {
            stops += 1;
            if stops > 1 {
                return Err("stopped waiting for modman's daemon, which goes on with the command; `modman history` shows how it ends".into());
            }
            tracing::warn!("modman's daemon is making this change: it finishes there whatever happens here, and its answer follows (interrupt again to stop waiting for it)");
            Ok(())
        });
        match offered.await?? {
            Handover::Taken(answer, handed) => {
                return print_answer(answer, Some(Verdicts::Daemon(handed))).await
            }
            Handover::Unanswered(why) => tracing::debug!("made here, not by a daemon: {why}"),
            Handover::Declined(why) => {
                tracing::warn!(
                    "modman's daemon did not take this command, so it is made here: {why}"
                )
            }
        }
    }
    // Before the engine opens: even recovery writes.
    let (actor, opening) = match (Actor::local_changer(&config), op.spec().access) {
        (Ok(actor), _) => (actor, Opening::ToChange),
        (Err(_), ops::Access::Read) => (Actor::local_user(), Opening::ToRead),
        (Err(e), ops::Access::Change) => {
            return print_answer(Answer::failed(e.into(), json), None).await
        }
    };
    let ctx = open_config(config, opening)?;
    let verdicts = ctx.watches.route(&actor);
    let running = op.run(&ctx, &actor, &input);
    let result = match op.spec().access {
        ops::Access::Change => finish_on_stop(&ctx, running).await?,
        ops::Access::Read => running.await,
    };
    ctx.watches.unroute(&actor);
    let moment = match args.try_get_one::<bool>(AT_START).ok().flatten() == Some(&true) {
        true => local::Moment::ServiceStart,
        false => local::Moment::Any,
    };
    let answer = Answer::of(node, result, &input.consent, json, moment);
    print_answer(answer, Some(Verdicts::Here(&ctx, verdicts))).await
}

/// Prints `answer` (its result on stdout, its error on stderr), then each
/// health verdict of the change as it comes, on stderr; the exit code says
/// whether all went well.
async fn print_answer(answer: Answer, verdicts: Option<Verdicts<'_>>) -> Result<ExitCode, String> {
    if let Some(stdout) = &answer.stdout {
        out!("{stdout}");
    }
    let healthy = match verdicts {
        Some(verdicts) => watched_healthy(verdicts).await,
        None => true,
    };
    if let Some(error) = answer.error {
        return Err(error);
    }
    Ok(match (answer.status, healthy) {
        (local::Status::Success, true) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// Where a change's health verdicts come from.
enum Verdicts<'a> {
    /// The watches of this process, routed to this command.
    Here(
        &'a Context,
        tokio::sync::mpsc::Receiver<ops::health::Notice>,
    ),
    /// The daemon that made the change.
    Daemon(local::ask::Handed),
}

impl Verdicts<'_> {
    /// The next verdict; none once every watch the change started ended.
    async fn next(&mut self) -> Option<local::Verdict> {
        match self {
            Verdicts::Here(_, notices) => notices.recv().await.map(|notice| (&notice).into()),
            Verdicts::Daemon(handed) => handed.verdict().await,
        }
    }
}

/// Waits for the verdicts of the health watches the change started,
/// printing each on stderr as it comes (stdout keeps the one answer);
/// false if one failed. Stopping the command meanwhile leaves the change
/// standing: here the watches end, unchecked; the daemon goes on watching.
async fn watched_healthy(mut verdicts: Verdicts<'_>) -> bool {
    let mut healthy = true;
    // Without signals to listen for, the watches run their course.
    let mut stops = Stops::listen().ok();
    loop {
        let stop = async {
            match &mut stops {
                Some(stops) => stops.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            verdict = verdicts.next() => match verdict {
                Some(verdict) => {
                    eprintln!("{}", verdict.text);
                    healthy &= verdict.healthy;
                }
                None => return healthy,
            },
            () = stop => match &verdicts {
                Verdicts::Here(ctx, _) => {
                    // Each watch ends early and says nothing more.
                    eprintln!("stopped watching: the change stands, unchecked");
                    ctx.watches.stop_all();
                    stops = None;
                }
                Verdicts::Daemon(_) => {
                    eprintln!("stopped waiting: modman's daemon goes on watching the change and undoes it if it fails; its log and `modman history` give the verdict");
                    return healthy;
                }
            },
        }
    }
}

/// Logs, at the daemon's start, whether each repository could be read at
/// its last refresh, so an admin whose host cannot reach one reads why
/// and what to do in the first lines of the log, not after a `list` that
/// offers nothing. A repository never refreshed is said by the first
/// refresh, which a new install runs at once.
fn say_repositories(ctx: &Context) {
    if ctx.config.repositories.is_empty() {
        tracing::warn!("no repository is configured: only modules already on disk can be managed; add a [[repositories]] section to modman.toml");
    }
    ops::check::say_repositories(ctx);
}

/// Runs a changing operation so that SIGINT or SIGTERM never cuts a change
/// in half: one that came before the change began ends the command with
/// nothing changed; one that comes while it runs is noted, and the change
/// finishes (or is undone) and is reported as usual.
async fn finish_on_stop<T>(
    ctx: &Context,
    running: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    Stops::outlast(running, || {
        if !ctx.engine.changing() {
            return Err("interrupted before any change began; nothing was changed".into());
        }
        tracing::warn!("a change is under way: it finishes first, then modman exits");
        Ok(())
    })
    .await
}

/// SIGINT and SIGTERM, the signals that ask a command to stop.
struct Stops {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stops {
    fn listen() -> Result<Stops, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
        Ok(Stops {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    /// Runs `running` to its end through SIGINT and SIGTERM, asking
    /// `at_stop` at each whether to go on, or to give up with its error.
    async fn outlast<T>(
        running: impl std::future::Future<Output = T>,
        mut at_stop: impl FnMut() -> Result<(), String>,
    ) -> Result<T, String> {
        let mut stops = Stops::listen()?;
        let mut running = std::pin::pin!(running);
        loop {
            tokio::select! {
                done = &mut running => return Ok(done),
                () = stops.next() => at_stop()?,
            }
        }
    }

    /// Resolves at the next of them.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Loads the config and opens the engine, logging what recovery did.
fn open(path: &Path) -> Result<(Context, Arc<Config>), String> {
    let config = load(path)?;
    Ok((open_config(config.clone(), Opening::ToChange)?, config))
}

fn load(path: &Path) -> Result<Arc<Config>, String> {
    Config::load(path).map(Arc::new).map_err(|e| e.to_string())
}

/// Opens the engine, logging what recovery did.
fn open_config(config: Arc<Config>, opening: Opening) -> Result<Context, String> {
    let (mut ctx, notes) = Context::open(config.clone(), opening).map_err(|e| e.to_string())?;
    ctx.component_probe = Some(Arc::new(HandshakeProbe(config)));
    for note in notes {
        tracing::warn!("{note}");
    }
    Ok(ctx)
}

/// The tree `repo build` reads.
enum Tree {
    Given(PathBuf),
    /// Debian's prosody-modules laid out afresh; removed when dropped.
    Debian(tempfile::TempDir),
}

impl Tree {
    fn path(&self) -> &Path {
        match self {
            Tree::Given(path) => path,
            Tree::Debian(dir) => dir.path(),
        }
    }
}

/// Debian's prosody-modules in the upstream layout, in a new temporary
/// directory.
fn debian_tree(root: &Path) -> Result<tempfile::TempDir, String> {
    use modman::repo::debian;
    let package = debian::read(root).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir()
        .map_err(|e| format!("cannot make a temporary directory to lay out Debian's prosody-modules in: {e}; nothing was built"))?;
    let laid_out = debian::lay_out(&package, dir.path()).map_err(|e| e.to_string())?;
    for note in &laid_out.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "{} modules from Debian's prosody-modules {}",
        laid_out.modules, package.version
    );
    Ok(dir)
}

/// `repo mirror`'s exit status when it published the mirror without some
/// modules, whose newest rocks were refused; the output names each.
const EXIT_LEFT_OUT: u8 = 3;

/// `repo mirror`, with a progress line per module when stderr is a terminal.
async fn mirror(
    options: &modman::repo::mirror::MirrorOptions<'_>,
    json: bool,
) -> Result<ExitCode, String> {
    use std::io::IsTerminal as _;
    let terminal = std::io::stderr().is_terminal();
    let report = modman::repo::mirror::mirror(options, &mut |step| {
        if terminal {
            let source = if step.from_server {
                "fetched"
            } else {
                "cached"
            };
            eprintln!("[{}/{}] {} ({source})", step.done, step.total, step.rock);
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let exit = match report.left_out.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(EXIT_LEFT_OUT),
    };
    if json {
        out!("{}", report.to_json());
        return Ok(exit);
    }
    out!(
        "mirrored {} modules from {} into {} ({} rocks fetched, the others cached in {})",
        report.modules,
        options.from,
        options.out.display(),
        report.fetched,
        modman::repo::mirror::cache_dir(options.out).display()
    );
    if !report.left_out.is_empty() {
        out!(
            "{} module(s) left out, the rest published and signed:",
            report.left_out.len()
        );
    }
    for omission in &report.left_out {
        out!("  {omission}");
    }
    Ok(exit)
}

async fn repo(command: RepoCommand) -> Result<ExitCode, String> {
    use modman::repo::{build, signing, verify};
    let done = match command {
        RepoCommand::Keygen { out } => {
            let key = signing::generate(&out).map_err(|e| e.to_string())?;
            eprintln!(
                "wrote the private key to {}; keep it secret, it signs your index",
                out.display()
            );
            out!("{}", signing::public_key_text(&key.verifying_key()));
            Ok(())
        }
        RepoCommand::Build {
            from,
            from_debian,
            debian_root,
            out,
            name,
            key,
            builtin_modules,
            valid_for,
            keep,
        } => {
            // Debian's modules, laid out in the upstream layout in a
            // directory that goes when the build is done.
            // clap requires --from unless --from-debian is given.
            let _ = from_debian;
            let laid_out = match from {
                Some(tree) => Tree::Given(tree),
                None => Tree::Debian(debian_tree(&debian_root)?),
            };
            let from = laid_out.path();
            let options = build::BuildOptions {
                tree: from,
                out: &out,
                name: &name,
                key: &key,
                builtin_dir: &builtin_modules,
                valid_for: time::Duration::days(valid_for.into()),
                // At most 32, as clap checked.
                keep: keep as usize,
            };
            let report = build::build(&options).map_err(|e| e.to_string())?;
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            out!(
                "built {} modules from {} into {} ({} warnings)",
                report.modules,
                match &laid_out {
                    Tree::Given(tree) => tree.display().to_string(),
                    Tree::Debian(_) => "Debian's prosody-modules".into(),
                },
                out.display(),
                report.warnings.len()
            );
            Ok(())
        }
        RepoCommand::Mirror {
            from,
            out,
            name,
            key,
            builtin_modules,
            timeout_seconds,
            valid_for,
            keep,
            json,
        } => {
            let options = modman::repo::mirror::MirrorOptions {
                from: &from,
                out: &out,
                name: &name,
                key: &key,
                builtin_dir: &builtin_modules,
                timeout: std::time::Duration::from_secs(timeout_seconds),
                valid_for: time::Duration::days(valid_for.into()),
                // At most 32, as the argument's range says.
                keep: keep as usize,
            };
            return mirror(&options, json).await;
        }
        RepoCommand::Advise {
            dir,
            module,
            versions,
            kind,
            reason,
            fixed,
            key,
        } => {
            use modman::repo::index::{Advisory, AdvisoryKind, Timestamp};
            let module = module.strip_prefix("mod_").unwrap_or(&module).to_owned();
            let kind = AdvisoryKind::parse(&kind).ok_or("--kind: insecure or withdrawn")?;
            let advisory = Advisory {
                module: module.clone(),
                versions: versions.clone(),
                kind,
                reason,
                fixed,
                issued: Timestamp::now(),
            };
            let done =
                modman::repo::advise::advise(&dir, &key, advisory).map_err(|e| e.to_string())?;
            if done.offered.is_none() {
                eprintln!("warning: {} does not offer {module}; the advisory reaches the modmans that have it installed all the same", dir.display());
            }
            out!(
                "{} {module} {} as {kind} in {} (serial {}); publish the directory, and each modman tells its admins at its next refresh",
                if done.replaced { "re-marked" } else { "marked" },
                versions.join(", "),
                dir.display(),
                done.serial
            );
            Ok(())
        }
        RepoCommand::Verify {
            dir,
            public_key,
            json,
        } => {
            let text = match std::fs::read_to_string(&public_key) {
                Ok(text) => text,
                Err(_) => public_key,
            };
            let key = modman::config::parse_public_key(&text)
                .map_err(|e| format!("--public-key: {e}"))?;
            let verified = verify::verify(&dir, &key);
            let freshness = (verified.stamp.as_ref())
                .map(|s| format!("; {s}"))
                .unwrap_or_default();
            let count = verified.problems.len();
            match json {
                true => out!("{}", verified.to_json()),
                false if count == 0 => out!(
                    "OK {}: signature valid, {} modules, every archive matches the index{freshness}",
                    dir.display(),
                    verified.modules
                ),
                false => {
                    for problem in &verified.problems {
                        out!("FAIL {}: {}", problem.file, problem.what);
                    }
                }
            }
            match count {
                0 => Ok(()),
                _ => {
                    let plural = if count == 1 { "" } else { "s" };
                    Err(format!(
                        "{}: {count} problem{plural} found{freshness}; do not publish it",
                        dir.display(),
                    ))
                }
            }
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation's subcommand read alone reads every command line as
    /// the whole command line does: the same matches, the same help, the
    /// same errors.
    #[test]
    fn an_operation_read_alone_reads_as_the_whole_command_line() {
        let whole = |args: &[&str]| cli().try_get_matches_from(args);
        let alone = |args: &[&str]| command_line(args.iter().map(Into::into).collect());
        for op in ops::all() {
            let node = op.spec().node;
            let lines: [&[&str]; 6] = [
                &["modman", node, "-c", "m.toml"],
                &["modman", node, "--config=m.toml", "--json", "lastlog"],
                &["modman", node, "-c", "m.toml", "--yes", "--dry-run"],
                &["modman", node, "-c", "m.toml", "--bogus"],
                &["modman", node, "--help"],
                &["modman", node],
            ];
            for line in lines {
                match (whole(line), alone(line)) {
                    // The root's own bookkeeping aside (which subcommands
                    // it knows), what main reads.
                    (Ok(whole), Ok(alone)) => {
                        assert_eq!(whole.subcommand(), alone.subcommand(), "{line:?}")
                    }
                    (Err(whole), Err(alone)) => {
                        assert_eq!(whole.kind(), alone.kind(), "{line:?}");
                        assert_eq!(whole.to_string(), alone.to_string(), "{line:?}");
                    }
                    (whole, alone) => panic!("{line:?}: {whole:?} against {alone:?}"),
                }
            }
        }
        let check = command_line(
            ["modman", "check", "-c", "m.toml", "--at-start"]
                .map(Into::into)
                .to_vec(),
        );
        let check = check.unwrap();
        assert_eq!(
            check.subcommand().unwrap().1.get_one::<bool>(AT_START),
            Some(&true)
        );
    }

    /// The completions offer every documented subcommand and never the
    /// package build's hidden `manuals`, which the full command line
    /// still parses.
    #[test]
    fn completions_leave_out_the_hidden_manuals() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut documented(), "modman", &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("install"), "{shell}");
            assert!(!script.contains(manuals::COMMAND), "{shell}: {script}");
        }
        let matches = cli().try_get_matches_from(["modman", manuals::COMMAND, "--out", "/x"]);
        let matches = matches.unwrap();
        let (name, args) = matches.subcommand().unwrap();
        assert_eq!(
            (name, manuals::out(args)),
            (manuals::COMMAND, Path::new("/x"))
        );
    }
}
