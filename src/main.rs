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
