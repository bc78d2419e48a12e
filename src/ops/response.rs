//! What an operation answers: neutral values each front end renders in
//! its own way (data forms, chat text, the terminal).

pub use super::confirm::Question;

/// A neutral result, rendered by each front end in its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Rows under named columns: a data-form `result` with `<reported/>`
    /// in ad-hoc, text in chat and on the command line.
    Table(Table),
    /// Labelled values about one thing (`info`).
    Details(Details),
    /// A question to answer before anything changes, bound to the plan
    /// it shows.
    Confirm(Question),
    /// Fields to fill before the operation can go on (`configure` shows a
    /// module's options): a form in ad-hoc, a listing with the way to set
    /// them in chat and on the shell.
    Form(Form),
}

/// A form an operation asks to be filled; submitted, its fields come back
/// as the operation's input, with what was given before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub title: String,
    pub instructions: String,
    pub fields: Vec<FormField>,
}

/// One field of a [`Form`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub var: String,
    pub label: String,
    pub kind: FieldKind,
    /// The value now; empty for a secret.
    pub values: Vec<String>,
    /// One sentence: what it is, its default, whether the module needs
    /// it, and for a secret whether it is set.
    pub help: String,
    /// The module does not load while this is unset. A fact to show, not
    /// a field a form insists on: clients refuse to send a form with a
    /// required field empty, so every other option would wait on it.
    pub needed: bool,
}

/// How a field is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// Entered hidden, never shown back.
    Secret,
    Boolean,
    /// Several lines or items.
    Lines,
}

/// A titled table. `columns` are (var, label) pairs; each row has one cell
/// per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<(&'static str, &'static str)>,
    pub rows: Vec<Vec<String>>,
    /// One line summarising the table, such as a count or a hint.
    pub note: String,
}

/// The column of a table whose rows each went well or failed (one
/// repository's refresh, one check): a typed fact that clients read as a field, and
/// that makes the command line exit non-zero when a row failed.
pub const OUTCOME: (&str, &str) = ("outcome", "Outcome");

/// How one row's work went, in the [`OUTCOME`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Worth reading, but nothing failed (`check` with no repository).
    Warning,
    /// A repository that cannot be read now (down, out of reach, or
    /// serving what modman refuses). modman runs without it, on the last
    /// index it kept if any, so a check at service start accepts it while
    /// a check by hand fails on it.
    Unavailable,
    Failed,
}

impl Outcome {
    /// The cell's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warning => "warning",
            Outcome::Unavailable => "unavailable",
            Outcome::Failed => "failed",
        }
    }
}

impl Table {
    /// Whether a row's [`OUTCOME`] says it failed.
    pub fn failed(&self) -> bool {
        self.has(Outcome::Failed)
    }

    /// Whether a row's [`OUTCOME`] is `outcome`.
    pub fn has(&self, outcome: Outcome) -> bool {
        self.cells(OUTCOME).any(|cell| cell == outcome.as_str())
    }

    /// Each row's cell in `column`, in row order (none when the table
    /// has no such column), so a reader names the column it means
    /// instead of counting positions.
    pub fn cells(&self, column: (&str, &str)) -> impl Iterator<Item = &str> {
        let at = self.columns.iter().position(|c| c.0 == column.0);
        self.rows
            .iter()
            .filter_map(move |row| at.and_then(|at| row.get(at)).map(String::as_str))
    }
}

/// Labelled values; a value may span lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub title: String,
    /// (field var, label, value).
    pub fields: Vec<(&'static str, &'static str, String)>,
    /// (field var, where its whole value can be read), for a value that
    /// may be too long for one reply (a README): said where it is cut
    /// (see [`Response::fit`]).
    pub whole_at: Vec<(&'static str, String)>,
}
