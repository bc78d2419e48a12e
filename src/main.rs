//! The `modman` command line: `run` serves XMPP; the other subcommands
//! run the same operations from a shell, rendered as plain text.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use modman::config::Config;
use modman::ops::{self, Context, Input};

/// Manage Prosody modules over XMPP.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to Prosody as a component and serve commands until SIGINT or SIGTERM.
    Run {
        /// Path to modman.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// List the modules in modman's module directory.
    List {
        #[arg(long, short)]
        config: PathBuf,
        /// Only modules whose name contains this text.
        query: Option<String>,
    },
    /// Build, sign and verify module repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Create a signing key (mode 0600) and print its public key for modman.toml.
    Keygen {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a signed repository from a prosody-modules tree (mod_x/mod_x.lua, mod_x/README.markdown).
    Build {
        /// The tree to build from.
        #[arg(long)]
        from: PathBuf,
        /// The repository directory to create or replace; serve it with any static HTTP server.
        #[arg(long)]
        out: PathBuf,
        /// The private key from `modman repo keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Prosody's own modules, to tell built-in dependencies from missing ones.
        #[arg(long, default_value = "/usr/lib/prosody/modules")]
        builtin_modules: PathBuf,
    },
    /// Check a repository's signature and every archive against its index.
    Verify {
        /// The repository directory.
        dir: PathBuf,
        /// The public key printed by keygen, or a file holding it.
        #[arg(long)]
        public_key: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<(), String> {
    match command {
        Command::Run { config } => {
            let config = load(&config)?;
            tracing::info!(
                "modman {} starting; admins: {:?}",
                env!("CARGO_PKG_VERSION"),
                config.admins
            );
            modman::xmpp::component::run(config)
                .await
                .map_err(|e| format!("cannot listen for signals: {e}"))
        }
        Command::List { config, query } => {
            let raw = query.map(|q| ("query", vec![q]));
            run_operation(&config, "list", raw.into_iter().collect()).await
        }
        Command::Repo(command) => repo(command),
    }
}

fn repo(command: RepoCommand) -> Result<(), String> {
    use modman::repo::{build, signing, verify};
    match command {
        RepoCommand::Keygen { out } => {
            let key = signing::generate(&out).map_err(|e| e.to_string())?;
            eprintln!(
                "wrote the private key to {}; keep it secret, it signs your index",
                out.display()
            );
            println!("{}", signing::public_key_text(&key.verifying_key()));
            Ok(())
        }
        RepoCommand::Build {
            from,
            out,
            key,
            builtin_modules,
        } => {
            let options = build::BuildOptions {
                tree: &from,
                out: &out,
                key: &key,
                builtin_dir: &builtin_modules,
            };
            let report = build::build(&options).map_err(|e| e.to_string())?;
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "built {} modules from {} into {} ({} warnings)",
                report.modules,
                from.display(),
                out.display(),
                report.warnings.len()
            );
            Ok(())
        }
        RepoCommand::Verify { dir, public_key } => {
            let text = match std::fs::read_to_string(&public_key) {
                Ok(text) => text,
                Err(_) => public_key,
            };
            let key = modman::config::parse_public_key(&text)
                .map_err(|e| format!("--public-key: {e}"))?;
            let (modules, problems) = verify::verify(&dir, &key);
            for problem in &problems {
                println!("FAIL {}: {}", problem.file, problem.what);
            }
            if problems.is_empty() {
                println!(
                    "OK {}: signature valid, {modules} modules, every archive matches the index",
                    dir.display()
                );
                Ok(())
            } else {
                Err(format!(
                    "{}: {} problems found",
                    dir.display(),
                    problems.len()
                ))
            }
        }
    }
}

/// Runs operation `node` with raw CLI values and prints its text rendering.
async fn run_operation(
    config: &Path,
    node: &str,
    raw: Vec<(&str, Vec<String>)>,
) -> Result<(), String> {
    let ctx = Context {
        config: load(config)?,
    };
    let op = ops::find(node).ok_or_else(|| format!("no operation `{node}`"))?;
    let input = Input::check(op.spec().params, raw).map_err(|e| e.to_string())?;
    let response = op.run(&ctx, &input).await.map_err(|e| e.to_string())?;
    println!("{}", modman::text::render(&response));
    Ok(())
}

fn load(path: &Path) -> Result<Arc<Config>, String> {
    Config::load(path).map(Arc::new).map_err(|e| e.to_string())
}
