//! prosody.cfg.lua, read once for everything modman asks of it: its host
//! and component sections, its Includes, and the options set globally or
//! per section, each with the line it is on (setup edits the file in
//! place). `setup`, `check` and the engine's "does this host set its own
//! modules_enabled" all read it here.
//!
//! The file is Lua, so it is read as Lua is: comments (`--` and
//! `--[[ ... ]]`) and strings (`"..."`, `'...'`, `[[ ... ]]`) are tokens,
//! not text to search, so a commented-out `VirtualHost`, `Component` or
//! `Include` is not one, and `--` inside a string is no comment. Only
//! what Prosody's own config reader gives meaning to is understood
//! (assignments of literals and tables, section and Include calls); any
//! other code is stepped over. Includes are not followed. The admin's
//! file is bounded all the same: its size, and how deep tables nest.

use std::collections::BTreeSet;
use std::path::Path;

use super::scope::GLOBAL;

/// Largest prosody.cfg.lua read; Debian's is 11 KiB.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Deepest nesting of tables and brackets read.
const MAX_DEPTH: usize = 64;

/// Why prosody.cfg.lua could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfgError {
    #[error("cannot read {path}: {problem}")]
    Io { path: String, problem: String },
    #[error("{path} is larger than {MAX_BYTES} bytes; refused")]
    TooLarge { path: String },
    /// Lua that Prosody would refuse too (an unfinished string or
    /// comment, tables nested too deep).
    #[error("line {line}: {problem}")]
    Syntax { line: usize, problem: String },
}

/// Where something is: a line (from 0, as `str::lines` counts) and the
/// byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A section header: what the options after it apply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// `VirtualHost "name"` (or its other name, `Host`).
    VirtualHost(String),
    /// `Component "name"`, with the module that serves it (`"muc"`), or
    /// none for an external component.
    Component {
        name: String,
        module: Option<String>,
    },
}

impl Section {
    /// The host name the section is for.
    pub fn name(&self) -> &str {
        match self {
            Section::VirtualHost(name) | Section::Component { name, .. } => name,
        }
    }
}

/// The value of an option, as far as modman needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// As written.
    Number(String),
    Boolean(bool),
    Nil,
    /// `{ ... }`: its fields in order, each with its key when written
    /// `key = value`.
    Table {
        fields: Vec<(Option<String>, Value)>,
        /// Where its `{` is.
        open: Position,
    },
    /// Anything computed (a variable, a call, a concatenation).
    Other,
}

impl Value {
    /// The strings of a list (`{ "a"; "b" }`); empty for anything else.
    pub fn strings(&self) -> Vec<&str> {
        match self {
            Value::Table { fields, .. } => fields
                .iter()
                .filter_map(|(key, value)| match (key, value) {
                    (None, Value::Text(text)) => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    }

    /// The number, or a list's first number (`component_ports = { 5347 }`).
    pub fn first_number(&self) -> Option<&str> {
        match self {
            Value::Number(number) => Some(number),
            Value::Table { fields, .. } => fields.iter().find_map(|(_, v)| v.first_number()),
            _ => None,
        }
    }
}

/// One statement modman understands, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    Section {
        section: Section,
        line: usize,
    },
    /// `Include "pattern"`.
    Include {
        pattern: String,
        line: usize,
    },
    /// `name = value`, in the section before it (`None`: global).
    Assign {
        name: String,
        value: Value,
        section: Option<usize>,
        line: usize,
    },
}

/// prosody.cfg.lua as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProsodyCfg {
    pub statements: Vec<Statement>,
    /// The sections, in file order; [`Statement::Assign`] points here.
    pub sections: Vec<Section>,
}

impl ProsodyCfg {
    /// Reads the file at `path`, at most [`MAX_BYTES`].
    pub fn read(path: &Path) -> Result<ProsodyCfg, CfgError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let io = |e: std::io::Error| CfgError::Io {
            path: shown.clone(),
            problem: e.to_string(),
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_BYTES {
            return Err(CfgError::TooLarge { path: shown });
        }
        ProsodyCfg::parse(&text)
    }

    /// Reads `text` as prosody.cfg.lua.
    pub fn parse(text: &str) -> Result<ProsodyCfg, CfgError> {
        Parser {
            tokens: tokens(text)?,
            at: 0,
            cfg: ProsodyCfg::default(),
        }
        .statements()
    }

    /// The line of the first section header: global options go before it.
    pub fn first_section_line(&self) -> Option<usize> {
        self.statements.iter().find_map(|s| match s {
            Statement::Section { line, .. } => Some(*line),
            _ => None,
        })
    }

    /// The global assignment of `name` that Prosody keeps (the last), as
    /// (value, line).
    pub fn global(&self, name: &str) -> Option<(&Value, usize)> {
        self.statements.iter().rev().find_map(|s| match s {
            Statement::Assign {
                name: n,
                value,
                section: None,
                line,
            } if n == name => Some((value, *line)),
            _ => None,
        })
    }

    /// The hosts whose sections set `name` themselves.
    pub fn hosts_setting(&self, name: &str) -> BTreeSet<String> {
        (self.statements.iter())
            .filter_map(|s| match s {
                Statement::Assign {
                    name: n,
                    section: Some(section),
                    ..
                } if n == name => Some(self.sections[*section].name().to_owned()),
                _ => None,
            })
            .collect()
    }

    /// Whether a section for host or component `name` is declared.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    Text(String),
    Number(String),
    Symbol(&'static str),
}

/// Lua's symbols, longest first.
const SYMBOLS: &[&str] = &[
    "...", "..", "==", "~=", "<=", ">=", "//", "::", "<<", ">>", "+", "-", "*", "/", "%", "^", "#",
    "&", "~", "|", "<", ">", "=", "(", ")", "{", "}", "[", "]", ";", ":", ",", ".",
];

/// The tokens of `text`, comments left out, each with where it starts.
fn tokens(text: &str) -> Result<Vec<(Token, Position)>, CfgError> {
    let bytes = text.as_bytes();
    let (mut at, mut line, mut line_start) = (0, 0, 0);
    let mut found = Vec::new();
    let syntax = |line: usize, problem: &str| CfgError::Syntax {
        line: line + 1,
        problem: problem.to_owned(),
    };
    while at < bytes.len() {
        let position = Position {
            line,
            column: at - line_start,
        };
        let c = bytes[at];
        if c == b'\n' {
            at += 1;
            line += 1;
            line_start = at;
        } else if c.is_ascii_whitespace() {
            at += 1;
        } else if text[at..].starts_with("--") {
            match long_bracket(&text[at + 2..]) {
                Some(level) => {
                    let (end, lines, last) = long_end(&text[at + 2..], level)
                        .ok_or_else(|| syntax(line, "a --[[ comment is never closed"))?;
                    line_start = if lines > 0 { at + 2 + last } else { line_start };
                    line += lines;
                    at += 2 + end;
                }
                None => at += text[at..].find('\n').unwrap_or(text.len() - at),
            }
        } else if c == b'[' && long_bracket(&text[at..]).is_some() {
            let level = long_bracket(&text[at..]).unwrap_or_default();
            let (end, lines, last) = long_end(&text[at..], level)
                .ok_or_else(|| syntax(line, "a [[ string is never closed"))?;
            // `[==[` and `]==]` are as long as each other.
            let bracket = level + 2;
            let mut body = &text[at + bracket..at + end - bracket];
            // Lua skips a line break right after the opening bracket.
            body = body.strip_prefix('\n').unwrap_or(body);
            found.push((Token::Text(body.to_owned()), position));
            line_start = if lines > 0 { at + last } else { line_start };
            line += lines;
            at += end;
        } else if c == b'"' || c == b'\'' {
            let mut value = String::new();
            let mut chars = text[at + 1..].char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(syntax(line, "a string is never closed")),
                    Some((_, '\n')) => return Err(syntax(line, "a string runs past its line")),
                    Some((i, q)) if q as u32 == c as u32 => break at + 1 + i + 1,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        // An escaped line break is one; `\z` skips the
                        // blanks and line breaks after it.
                        Some((i, '\n')) => {
                            value.push('\n');
                            (line, line_start) = (line + 1, at + 1 + i + 1);
                        }
                        Some((_, 'z')) => {
                            while let Some((i, blank)) = chars
                                .clone()
                                .next()
                                .filter(|(_, c)| c.is_ascii_whitespace())
                            {
                                chars.next();
                                if blank == '\n' {
                                    (line, line_start) = (line + 1, at + 1 + i + 1);
                                }
                            }
                        }
                        Some((_, other)) => value.push(other),
                        None => return Err(syntax(line, "a string is never closed")),
                    },
                    Some((_, other)) => value.push(other),
                }
            };
            found.push((Token::Text(value), position));
            at = end;
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = at;
            while at < bytes.len() {
                let d = bytes[at];
                let exponent = matches!(d, b'+' | b'-')
                    && matches!(bytes[at - 1], b'e' | b'E' | b'p' | b'P')
                    && !text[start..at].starts_with("0x");
                if d.is_ascii_alphanumeric() || d == b'.' || exponent {
                    at += 1;
                } else {
                    break;
                }
            }
            found.push((Token::Number(text[start..at].to_owned()), position));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = at;
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            found.push((Token::Name(text[start..at].to_owned()), position));
        } else {
            let symbol = SYMBOLS
                .iter()
                .find(|s| text[at..].starts_with(**s))
                .ok_or_else(|| syntax(line, "a character Lua does not read here"))?;
            found.push((Token::Symbol(symbol), position));
            at += symbol.len();
        }
    }
    Ok(found)
}

/// The level of a long bracket opening `text` (`[[` is 0, `[==[` 2).
fn long_bracket(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('[')?;
    let level = rest.bytes().take_while(|b| *b == b'=').count();
    rest[level..].starts_with('[').then_some(level)
}

/// Where the long bracket of `level` opening `text` closes: the offset
/// just after it, the line breaks inside, and the offset just after the
/// last of them.
fn long_end(text: &str, level: usize) -> Option<(usize, usize, usize)> {
    let close = format!("]{}]", "=".repeat(level));
    let body = level + 2;
    let end = body + text[body..].find(&close)? + close.len();
    let inside = &text[..end];
    let lines = inside.matches('\n').count();
    let last = inside.rfind('\n').map_or(0, |n| n + 1);
    Some((end, lines, last))
}

struct Parser {
    tokens: Vec<(Token, Position)>,
    at: usize,
    cfg: ProsodyCfg,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.tokens.get(self.at).map_or(0, |(_, p)| p.line)
    }

    fn is(&self, symbol: &'static str) -> bool {
        self.peek() == Some(&Token::Symbol(symbol))
    }

    fn statements(mut self) -> Result<ProsodyCfg, CfgError> {
        let mut current = None;
        while let Some(token) = self.peek().cloned() {
            let line = self.line();
            // `a.b = 1` sets a field, not an option.
            let after_dot =
                self.at > 0 && matches!(self.tokens[self.at - 1].0, Token::Symbol("." | ":"));
            match token {
                Token::Name(_) if after_dot => self.at += 1,
                Token::Name(name)
                    if matches!(name.as_str(), "VirtualHost" | "Host" | "Component") =>
                {
                    self.at += 1;
                    let Some(host) = self.argument() else {
                        continue;
                    };
                    let section = match name.as_str() {
                        "Component" => Section::Component {
                            name: host,
                            module: self.argument(),
                        },
                        _ => Section::VirtualHost(host),
                    };
                    if section == Section::VirtualHost(GLOBAL.into()) {
                        // `Host "*"`: the options after it are global again.
                        current = None;
                    } else {
                        self.cfg.sections.push(section.clone());
                        current = Some(self.cfg.sections.len() - 1);
                        self.cfg
                            .statements
                            .push(Statement::Section { section, line });
                    }
                    // `VirtualHost "x" { option = value }`
                    if self.is("{") {
                        if let Value::Table { fields, .. } = self.value(0)? {
                            for (key, value) in fields {
                                if let Some(name) = key {
                                    self.cfg.statements.push(Statement::Assign {
                                        name,
                                        value,
                                        section: current,
                                        line,
                                    });
                                }
                            }
                        }
                    }
                }
                Token::Name(name) if matches!(name.as_str(), "Include" | "include") => {
                    self.at += 1;
                    if let Some(pattern) = self.argument() {
                        self.cfg
                            .statements
                            .push(Statement::Include { pattern, line });
                    }
                }
                Token::Name(name) if self.peek_at(1) == Some(&Token::Symbol("=")) => {
                    self.at += 2;
                    let value = self.value(0)?;
                    self.cfg.statements.push(Statement::Assign {
                        name,
                        value,
                        section: current,
                        line,
                    });
                }
                // `local x = ...` is a variable, not an option.
                Token::Name(name) if name == "local" => {
                    self.at += 1;
                    while matches!(self.peek(), Some(Token::Name(_)))
                        || self.is(",")
                        || self.is("<")
                        || self.is(">")
                    {
                        self.at += 1;
                    }
                    if self.is("=") {
                        self.at += 1;
                        self.value(0)?;
                    }
                }
                Token::Symbol("(" | "{" | "[") => {
                    self.value(0)?;
                }
                _ => self.at += 1,
            }
        }
        Ok(self.cfg)
    }

    /// A call's one string argument: `"x"` or `("x")`.
    fn argument(&mut self) -> Option<String> {
        match (self.peek(), self.peek_at(1), self.peek_at(2)) {
            (Some(Token::Text(text)), _, _) => {
                let text = text.clone();
                self.at += 1;
                Some(text)
            }
            (Some(Token::Symbol("(")), Some(Token::Text(text)), Some(Token::Symbol(")"))) => {
                let text = text.clone();
                self.at += 3;
                Some(text)
            }
            _ => None,
        }
    }

    /// A value: a literal or a table as itself, anything computed as
    /// [`Value::Other`] with its tokens stepped over.
    fn value(&mut self, depth: usize) -> Result<Value, CfgError> {
        if depth > MAX_DEPTH {
            return Err(CfgError::Syntax {
                line: self.line() + 1,
                problem: format!("tables nested deeper than {MAX_DEPTH}"),
            });
        }
        let Some((token, position)) = self.tokens.get(self.at).cloned() else {
            return Ok(Value::Other);
        };
        self.at += 1;
        let value = match token {
            Token::Text(text) => Value::Text(text),
            Token::Number(number) => Value::Number(number),
            Token::Name(name) if name == "true" => Value::Boolean(true),
            Token::Name(name) if name == "false" => Value::Boolean(false),
            Token::Name(name) if name == "nil" => Value::Nil,
            Token::Symbol("{") => self.table(position, depth)?,
            Token::Symbol("(" | "[") => {
                self.skip_to_close(depth)?;
                Value::Other
            }
            Token::Symbol("-" | "#" | "~") => {
                self.value(depth + 1)?;
                Value::Other
            }
            Token::Name(name) if name == "not" => {
                self.value(depth + 1)?;
                Value::Other
            }
            Token::Name(name) if name == "function" => {
                self.skip_block(depth)?;
                Value::Other
            }
            _ => Value::Other,
        };
        // What follows a value and makes it an expression: an operator
        // and another operand, a call, an index.
        let mut value = value;
        loop {
            match self.peek() {
                Some(Token::Symbol(
                    ".." | "+" | "-" | "*" | "/" | "//" | "%" | "^" | "==" | "~=" | "<" | "<="
                    | ">" | ">=" | "&" | "|" | "~" | "<<" | ">>",
                )) => {
                    self.at += 1;
                    self.value(depth + 1)?;
                }
                Some(Token::Name(op)) if op == "and" || op == "or" => {
                    self.at += 1;
                    self.value(depth + 1)?;
                }
                Some(Token::Symbol("." | ":")) => {
                    self.at += 2;
                }
                Some(Token::Symbol("(" | "[")) => {
                    self.at += 1;
                    self.skip_to_close(depth)?;
                }
                Some(Token::Symbol("{")) | Some(Token::Text(_))
                    if matches!(value, Value::Other) =>
                {
                    self.value(depth + 1)?;
                }
                _ => return Ok(value),
            }
            value = Value::Other;
        }
    }

    /// The fields of a table whose `{` was at `open`.
    fn table(&mut self, open: Position, depth: usize) -> Result<Value, CfgError> {
        let mut fields = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(CfgError::Syntax {
                        line: open.line + 1,
                        problem: "a table `{` is never closed".into(),
                    })
                }
                Some(Token::Symbol("}")) => {
                    self.at += 1;
                    return Ok(Value::Table { fields, open });
                }
                Some(Token::Symbol("," | ";")) => self.at += 1,
                Some(Token::Symbol("[")) => {
                    self.at += 1;
                    self.skip_to_close(depth + 1)?;
                    // `[key] = value`: neither a name nor a list item.
                    if self.is("=") {
                        self.at += 1;
                    }
                    self.value(depth + 1)?;
                }
                Some(Token::Name(key)) if self.peek_at(1) == Some(&Token::Symbol("=")) => {
                    let key = key.clone();
                    self.at += 2;
                    fields.push((Some(key), self.value(depth + 1)?));
                }
                Some(_) => fields.push((None, self.value(depth + 1)?)),
            }
        }
    }

    /// Steps over tokens up to the bracket that closes one just read.
    fn skip_to_close(&mut self, depth: usize) -> Result<(), CfgError> {
        self.skip(depth, Nesting::Brackets)
    }

    /// Steps over a function's body, up to its `end`.
    fn skip_block(&mut self, depth: usize) -> Result<(), CfgError> {
        self.skip(depth, Nesting::Blocks)
    }

    /// Steps over tokens until what `nesting` counts, opened once just
    /// before, is closed.
    fn skip(&mut self, depth: usize, nesting: Nesting) -> Result<(), CfgError> {
        let mut open = 1usize;
        let line = self.line() + 1;
        while let Some(token) = self.peek().cloned() {
            self.at += 1;
            match (nesting, token) {
                (Nesting::Brackets, Token::Symbol("(" | "{" | "[")) => open += 1,
                (Nesting::Brackets, Token::Symbol(")" | "}" | "]")) => open -= 1,
                // `while`/`for` open with `do`, `elseif` opens nothing.
                (Nesting::Blocks, Token::Name(word))
                    if matches!(word.as_str(), "function" | "do" | "if") =>
                {
                    open += 1
                }
                (Nesting::Blocks, Token::Name(word)) if word == "end" => open -= 1,
                _ => {}
            }
            if depth + open > MAX_DEPTH {
                let problem = format!("{} nested deeper than {MAX_DEPTH}", nesting.what());
                return Err(CfgError::Syntax { line, problem });
            }
            if open == 0 {
                return Ok(());
            }
        }
        let problem = format!("{} opened here is never closed", nesting.what());
        Err(CfgError::Syntax { line, problem })
    }
}

/// What [`Parser::skip`] counts.
#[derive(Debug, Clone, Copy)]
enum Nesting {
    /// `(`, `{` and `[` against `)`, `}` and `]`.
    Brackets,
    /// `function`, `if` and `do` against `end`.
    Blocks,
}

impl Nesting {
    fn what(self) -> &'static str {
        match self {
            Nesting::Brackets => "brackets",
            Nesting::Blocks => "blocks",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's prosody.cfg.lua as the packages ship it (Prosody 0.12 in
    /// bookworm, 13 in trixie).
    const DEBIAN: [(&str, &str); 2] = [
        (
            "bookworm",
            include_str!("prosody_cfg/debian-bookworm.cfg.lua"),
        ),
        ("trixie", include_str!("prosody_cfg/debian-trixie.cfg.lua")),
    ];

    #[test]
    fn debians_default_config_reads_as_prosody_reads_it() {
        for (release, text) in DEBIAN {
            let cfg = ProsodyCfg::parse(text).unwrap();
            // The commented-out example sections are no sections.
            assert_eq!(
                cfg.sections,
                [Section::VirtualHost("localhost".into())],
                "{release}"
            );
            let first = cfg.first_section_line().unwrap();
            assert_eq!(text.lines().nth(first), Some("VirtualHost \"localhost\""));
            let (paths, line) = cfg.global("plugin_paths").unwrap();
            assert_eq!(paths.strings(), ["/usr/local/lib/prosody/modules"]);
            let Value::Table { open, .. } = paths else {
                panic!("{release}: {paths:?}");
            };
            assert_eq!(open.line, line);
            assert_eq!(&text.lines().nth(line).unwrap()[open.column..][..1], "{");
            let (enabled, _) = cfg.global("modules_enabled").unwrap();
            let enabled = enabled.strings();
            for module in ["disco", "roster", "admin_shell", "posix"] {
                assert!(enabled.contains(&module), "{release}: {module}");
            }
            for commented in ["mam", "bosh", "websocket"] {
                assert!(!enabled.contains(&commented), "{release}: {commented}");
            }
            assert_eq!(cfg.global("admins").unwrap().0.strings(), [""; 0]);
            assert_eq!(
                cfg.global("log")
                    .map(|(v, _)| matches!(v, Value::Table { .. })),
                Some(true)
            );
            // The example `--modules_enabled = { "muc_mam" }` is a comment.
            assert!(cfg.hosts_setting("modules_enabled").is_empty(), "{release}");
            let includes: Vec<&Statement> = (cfg.statements.iter())
                .filter(|s| matches!(s, Statement::Include { .. }))
                .collect();
            assert!(
                matches!(includes[..], [Statement::Include { pattern, line }]
                    if pattern == "conf.d/*.cfg.lua" && *line > first),
                "{release}: {includes:?}"
            );
        }
    }

    #[test]
    fn comments_and_strings_are_read_as_lua_reads_them() {
        let text = r#"
--[[ An old set-up:
VirtualHost "old.example"
    modules_enabled = { "legacy" }
Include "/etc/old.cfg.lua"
]]
--[==[ nested ]] brackets ]==]
plugin_paths = { [[/opt/long
string]], "/a--b", "/split\z
    /path", "two\
lines" } -- a comment
modules_enabled =
{
    'single'; "double"; -- "commented";
    --[[ "blocked"; ]] "after";
}
local unused = { modules_enabled = "no" }
server.option = 1
component_ports = 5347
VirtualHost "a.example" -- --[[ not a block
    modules_enabled = { "mam" }
Component ("muc.a.example") "muc"
    restrict_room_creation = true
Component "ext.a.example"
    component_secret = "s" .. os.getenv("X")
Host "b.example" { modules_enabled = { "csi" } }
Host "*"
    network_settings = { nagle = false }
Include 'conf.d/*.cfg.lua'
"#;
        let cfg = ProsodyCfg::parse(text).unwrap();
        assert_eq!(
            cfg.sections,
            [
                Section::VirtualHost("a.example".into()),
                Section::Component {
                    name: "muc.a.example".into(),
                    module: Some("muc".into())
                },
                Section::Component {
                    name: "ext.a.example".into(),
                    module: None
                },
                Section::VirtualHost("b.example".into()),
            ]
        );
        let (paths, _) = cfg.global("plugin_paths").unwrap();
        assert_eq!(
            paths.strings(),
            ["/opt/long\nstring", "/a--b", "/split/path", "two\nlines"]
        );
        let (enabled, line) = cfg.global("modules_enabled").unwrap();
        assert_eq!(enabled.strings(), ["single", "double", "after"]);
        let Value::Table { open, .. } = enabled else {
            panic!("{enabled:?}");
        };
        assert_eq!((open.line, open.column), (line + 1, 0));
        assert_eq!(
            cfg.global("component_ports").unwrap().0.first_number(),
            Some("5347")
        );
        assert_eq!(cfg.global("option"), None, "a field of a table");
        assert!(
            cfg.global("network_settings").is_some(),
            "Host \"*\" is global"
        );
        assert_eq!(
            cfg.hosts_setting("modules_enabled"),
            BTreeSet::from(["a.example".to_owned(), "b.example".to_owned()])
        );
        let secret = cfg.statements.iter().find_map(|s| match s {
            Statement::Assign {
                name,
                value,
                section,
                ..
            } if name == "component_secret" => Some((value, *section)),
            _ => None,
        });
        assert_eq!(secret, Some((&Value::Other, Some(2))));
        let last = cfg.statements.last().unwrap();
        assert!(
            matches!(last, Statement::Include { pattern, .. } if pattern == "conf.d/*.cfg.lua")
        );
        assert!(cfg.has_section("ext.a.example") && !cfg.has_section("old.example"));
    }

    /// The scanner before this reader counted `d.org`: its lines inside a
    /// `--[[ ]]` block do not start with `--`.
    #[test]
    fn hosts_with_their_own_list_are_found_and_a_commented_block_is_none() {
        let text = "modules_enabled = { \"roster\" }\nVirtualHost \"a.org\"\n  -- modules_enabled = { }\nVirtualHost \"b.org\"\n    modules_enabled = { \"mam\" }\nComponent \"c.b.org\" \"muc\"\n--[[\nVirtualHost \"d.org\"\n    modules_enabled = { \"mam\" }\n]]\n";
        assert_eq!(
            ProsodyCfg::parse(text)
                .unwrap()
                .hosts_setting("modules_enabled"),
            BTreeSet::from(["b.org".to_owned()])
        );
    }

    #[test]
    fn what_prosody_would_refuse_is_refused_with_its_line() {
        for (text, line) in [
            ("x = \"open\n", 1),
            ("\n--[[ never closed\n", 2),
            ("x = [[ never closed", 1),
            ("x = {\n\"a\";\n", 1),
        ] {
            match ProsodyCfg::parse(text) {
                Err(CfgError::Syntax { line: at, .. }) => assert_eq!(at, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let deep = format!(
            "x = {}{}",
            "{".repeat(MAX_DEPTH + 2),
            "}".repeat(MAX_DEPTH + 2)
        );
        assert!(ProsodyCfg::parse(&deep).is_err());
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("prosody.cfg.lua");
        std::fs::write(&big, vec![b' '; MAX_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            ProsodyCfg::read(&big),
            Err(CfgError::TooLarge { .. })
        ));
    }
}
