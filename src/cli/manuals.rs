//! `modman manuals --out DIR`: the manual pages and shell completions,
//! rendered from the same command definition as `--help`, so none of them
//! can say something `--help` does not. The package build runs it
//! (scripts/package) and ships what it writes; nothing generated is kept
//! in the source tree.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The hidden subcommand's name.
pub const COMMAND: &str = "manuals";

/// Its one argument's id.
const OUT: &str = "out";

/// `modman manuals --out DIR`, declared apart from the documented command
/// line: the pages and completions it writes are rendered from a tree
/// without it, so they never offer a command only the package build runs.
pub fn command() -> clap::Command {
    clap::Command::new(COMMAND)
        .hide(true)
        .about("Write the manual pages and the shell completions into a directory (the package build runs this).")
        .arg(
            clap::Arg::new(OUT)
                .long(OUT)
                .required(true)
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("The directory to write into: man/ and completions/ are made there."),
        )
}

/// The directory `manuals --out` names (required, so always there).
pub fn out(args: &clap::ArgMatches) -> &Path {
    args.get_one::<PathBuf>(OUT)
        .map_or(Path::new("."), PathBuf::as_path)
}

/// Writes `DIR/man/modman.1` and one page per subcommand
/// (`modman-install.1`, `modman-repo-build.1`...), and
/// `DIR/completions/` for bash, zsh and fish, under the names Debian's
/// bash-completion, zsh and fish look for.
pub fn write(cli: clap::Command, out: &Path) -> Result<(), String> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}; nothing was written", dir.display()))?;
    }
    clap_mangen::generate_to(cli.clone(), &man).map_err(|e| {
        format!(
            "cannot write the manual pages into {}: {e}; the pages there may be incomplete, run this again",
            man.display()
        )
    })?;
    let mut cli = cli;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cli, "modman", &completions).map_err(|e| {
            format!(
                "cannot write the {shell} completion into {}: {e}; run this again",
                completions.display()
            )
        })?;
    }
    out!(
        "Wrote the manual pages into {} and the shell completions into {}.",
        man.display(),
        completions.display()
    );
    Ok(())
}
