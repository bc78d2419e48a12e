//! A reader for the data subset of Lua that LuaRocks' `manifest` and
//! rockspec files are written in: assignments of strings, numbers,
//! booleans and (nested) tables, with comments. modman never runs these
//! files; everything else Lua can say (calls, loops, operators, variables,
//! functions) is refused with the file and the position, and so are inputs
//! past the limits below, so a hostile server cannot make modman run code
//! or spend unbounded memory or stack.

use std::collections::BTreeMap;

/// Largest file read.
pub const MAX_INPUT: usize = 16 * 1024 * 1024;
/// Longest string literal, after escapes.
pub const MAX_STRING: usize = 64 * 1024;
/// Deepest table nesting (a manifest needs 5).
pub const MAX_DEPTH: usize = 16;
/// Most values (strings, numbers, booleans, tables) in one file.
pub const MAX_ITEMS: usize = 500_000;

/// A Lua value of the subset.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Number(f64),
    Boolean(bool),
    Table(Table),
}

/// A table constructor: its positional items, then its keyed fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// `{ "a", "b" }`, in order.
    pub items: Vec<Value>,
    /// `{ a = 1, ["b-c"] = 2 }`; a key given twice is refused.
    pub fields: BTreeMap<String, Value>,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&Table> {
        match self {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }
}

impl Table {
    /// The field `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }
}

/// Why a file was refused: the file, where, and what was found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}, line {line}, column {column}: {problem}")]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

/// Reads a whole file: `name = value` statements, optionally separated by
/// `;`. Returns the assigned globals; assigning one twice is refused.
pub fn parse(file: &str, text: &str) -> Result<Table, SyntaxError> {
    let mut parser = Parser {
        file,
        text: text.as_bytes(),
        at: 0,
        items: 0,
    };
    if text.len() > MAX_INPUT {
        return Err(parser.fail(format!(
            "the file is {} bytes, more than the {MAX_INPUT} modman reads",
            text.len()
        )));
    }
    let mut globals = Table::default();
    loop {
        parser.skip_space()?;
        if parser.at == parser.text.len() {
            return Ok(globals);
        }
        if parser.eat(b';') {
            continue;
        }
        let start = parser.at;
        let name = parser.statement_name()?;
        parser.skip_space()?;
        if !parser.eat(b'=') {
            return Err(parser.unexpected_after_name(&name));
        }
        let value = parser.value(0)?;
        if globals.fields.insert(name.clone(), value).is_some() {
            parser.at = start;
            return Err(parser.fail(format!("`{name}` is assigned twice")));
        }
    }
}

struct Parser<'a> {
    file: &'a str,
    text: &'a [u8],
    at: usize,
    items: usize,
}

const KEYWORDS: [&str; 22] = [
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

impl Parser<'_> {
    fn fail(&self, problem: impl Into<String>) -> SyntaxError {
        let before = &self.text[..self.at.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        SyntaxError {
            file: self.file.to_owned(),
            line,
            column: String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1,
            problem: problem.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Skips white space and comments.
    fn skip_space(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c') => self.at += 1,
                Some(b'-') if self.text.get(self.at + 1) == Some(&b'-') => {
                    self.at += 2;
                    if self.long_bracket_level().is_some() {
                        self.long_string("comment")?;
                    } else {
                        while self.peek().is_some_and(|b| b != b'\n') {
                            self.at += 1;
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        let start = self.at;
        if !self
            .peek()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        {
            return None;
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.at += 1;
        }
        Some(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }

    /// The name a statement assigns to; keywords get a message saying what
    /// kind of code they start.
    fn statement_name(&mut self) -> Result<String, SyntaxError> {
        let start = self.at;
        let Some(name) = self.name() else {
            return Err(self.fail(format!(
                "{} where an assignment `name = value` was expected",
                self.describe_here()
            )));
        };
        if KEYWORDS.contains(&name.as_str()) {
            self.at = start;
            return Err(self.fail(keyword_problem(&name)));
        }
        Ok(name)
    }

    /// The error for a statement name not followed by `=`.
    fn unexpected_after_name(&self, name: &str) -> SyntaxError {
        match self.peek() {
            Some(b'(' | b'"' | b'\'' | b'{' | b':') => self.fail(format!(
                "a function call (`{name}...`); only assignments of plain values are allowed"
            )),
            Some(b'[' | b'.') => self.fail(format!(
                "an assignment into a field of `{name}`; only `name = value` is allowed"
            )),
            _ => self.fail(format!(
                "{} after `{name}`; expected `=`",
                self.describe_here()
            )),
        }
    }

    /// What is at the current position, for messages.
    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some(b) if b.is_ascii_graphic() => format!("`{}`", b as char),
            Some(b) => format!("byte 0x{b:02x}"),
        }
    }

    fn count_item(&mut self) -> Result<(), SyntaxError> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(self.fail(format!("more than {MAX_ITEMS} values")));
        }
        Ok(())
    }

    /// One value, then checks that no operator follows it.
    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.skip_space()?;
        self.count_item()?;
        let value = match self.peek() {
            Some(b'"' | b'\'') => Value::String(self.quoted_string()?),
            Some(b'[') if self.long_bracket_level().is_some() => {
                Value::String(self.long_string("string")?)
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.fail(format!("tables nested deeper than {MAX_DEPTH}")));
                }
                Value::Table(self.table(depth + 1)?)
            }
            Some(b'0'..=b'9') => Value::Number(self.number()?),
            Some(b'.') if self.text.get(self.at + 1).is_some_and(u8::is_ascii_digit) => {
                Value::Number(self.number()?)
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let start = self.at;
                let name = self.name().unwrap_or_default();
                match name.as_str() {
                    "true" => Value::Boolean(true),
                    "false" => Value::Boolean(false),
                    _ => {
                        self.skip_space()?;
                        let call = matches!(self.peek(), Some(b'(' | b'"' | b'\'' | b'{' | b':'));
                        self.at = start;
                        return Err(self.fail(if KEYWORDS.contains(&name.as_str()) {
                            keyword_problem(&name)
                        } else if call {
                            format!("a function call (`{name}...`); only plain values are allowed")
                        } else {
                            format!("a variable (`{name}`); only plain values are allowed")
                        }));
                    }
                }
            }
            Some(b'-' | b'#' | b'~') => {
                return Err(self.fail(format!(
                    "an operator ({}); only plain values are allowed",
                    self.describe_here()
                )))
            }
            _ => {
                return Err(self.fail(format!(
                    "{} where a value was expected",
                    self.describe_here()
                )))
            }
        };
        self.skip_space()?;
        match self.peek() {
            Some(
                b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'.' | b'<' | b'>' | b'~' | b'&' | b'|'
                | b'#',
            ) => Err(self.fail(format!(
                "an operator ({}); only plain values are allowed",
                self.describe_here()
            ))),
            Some(b'=') if self.text.get(self.at + 1) == Some(&b'=') => {
                Err(self.fail("an operator (`==`); only plain values are allowed"))
            }
            Some(b'(' | b'[' | b':') => Err(self.fail(format!(
                "{} after a value: a call or an index; only plain values are allowed",
                self.describe_here()
            ))),
            _ => Ok(value),
        }
    }

    fn table(&mut self, depth: usize) -> Result<Table, SyntaxError> {
        self.at += 1; // `{`
        let mut table = Table::default();
        loop {
            self.skip_space()?;
            if self.eat(b'}') {
                return Ok(table);
            }
            let key_start = self.at;
            let key = if self.peek() == Some(b'[') && self.long_bracket_level().is_none() {
                self.at += 1;
                self.skip_space()?;
                let key = match self.peek() {
                    Some(b'"' | b'\'') => self.quoted_string()?,
                    _ => {
                        return Err(self.fail(format!(
                            "{} as a table key; only string keys are allowed",
                            self.describe_here()
                        )))
                    }
                };
                self.skip_space()?;
                if !self.eat(b']') {
                    return Err(self.fail(format!("{}; expected `]`", self.describe_here())));
                }
                self.skip_space()?;
                if !self.eat(b'=') {
                    return Err(self.fail(format!("{}; expected `=`", self.describe_here())));
                }
                Some(key)
            } else {
                // `name =` is a key; anything else is a positional value.
                let start = self.at;
                match self.name() {
                    Some(name) if !KEYWORDS.contains(&name.as_str()) => {
                        self.skip_space()?;
                        if self.peek() == Some(b'=') && self.text.get(self.at + 1) != Some(&b'=') {
                            self.at += 1;
                            Some(name)
                        } else {
                            self.at = start;
                            None
                        }
                    }
                    _ => {
                        self.at = start;
                        None
                    }
                }
            };
            let value = self.value(depth)?;
            match key {
                Some(key) => {
                    if table.fields.contains_key(&key) {
                        self.at = key_start;
                        return Err(self.fail(format!("key `{key}` given twice in one table")));
                    }
                    table.fields.insert(key, value);
                }
                None => table.items.push(value),
            }
            self.skip_space()?;
            if self.eat(b'}') {
                return Ok(table);
            }
            if !self.eat(b',') && !self.eat(b';') {
                return Err(self.fail(format!(
                    "{} in a table; expected `,` or `}}`",
                    self.describe_here()
                )));
            }
        }
    }

    fn number(&mut self) -> Result<f64, SyntaxError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok().map(|n| n as f64),
            None => text.parse::<f64>().ok().filter(|n| n.is_finite()),
        };
        parsed.ok_or_else(|| {
            self.at = start;
            self.fail(format!("`{text}` is not a number modman reads"))
        })
    }

    /// At `[`, `[[` or `[==[`: the number of `=`.
    fn long_bracket_level(&self) -> Option<usize> {
        let rest = &self.text[self.at..];
        if rest.first() != Some(&b'[') {
            return None;
        }
        let level = rest[1..].iter().take_while(|&&b| b == b'=').count();
        (rest.get(1 + level) == Some(&b'[')).then_some(level)
    }

    /// A long string or comment `[==[ ... ]==]`; a first newline is dropped.
    fn long_string(&mut self, what: &str) -> Result<String, SyntaxError> {
        let start = self.at;
        let level = self.long_bracket_level().unwrap_or_default();
        self.at += level + 2;
        if self.eat(b'\r') {
            self.eat(b'\n');
        } else if self.eat(b'\n') {
            self.eat(b'\r');
        }
        let close = format!("]{}]", "=".repeat(level));
        let body_start = self.at;
        let Some(length) = find(&self.text[body_start..], close.as_bytes()) else {
            self.at = start;
            return Err(self.fail(format!("a long {what} that is never closed")));
        };
        if what == "string" && length > MAX_STRING {
            self.at = start;
            return Err(self.fail(format!("a string longer than {MAX_STRING} bytes")));
        }
        self.at = body_start + length + close.len();
        self.utf8(&self.text[body_start..body_start + length], start)
    }

    fn quoted_string(&mut self) -> Result<String, SyntaxError> {
        let start = self.at;
        let quote = self.text[self.at];
        self.at += 1;
        let mut bytes = Vec::new();
        loop {
            if bytes.len() > MAX_STRING {
                self.at = start;
                return Err(self.fail(format!("a string longer than {MAX_STRING} bytes")));
            }
            let Some(byte) = self.peek() else {
                self.at = start;
                return Err(self.fail("a string that is never closed"));
            };
            self.at += 1;
            match byte {
                b if b == quote => return self.utf8(&bytes, start),
                b'\n' | b'\r' => {
                    self.at = start;
                    return Err(self.fail("a string that is never closed on its line"));
                }
                b'\\' => self.escape(&mut bytes)?,
                b => bytes.push(b),
            }
        }
    }

    /// One escape sequence, after its backslash.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
        let Some(byte) = self.peek() else {
            return Err(self.fail("a string that is never closed"));
        };
        self.at += 1;
        let simple = match byte {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' | b'\n' => Some(byte),
            _ => None,
        };
        if let Some(simple) = simple {
            out.push(simple);
            return Ok(());
        }
        match byte {
            b'z' => {
                while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
                    self.at += 1;
                }
            }
            b'x' => {
                let hex = self.text.get(self.at..self.at + 2).unwrap_or_default();
                let value = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| self.fail("`\\x` not followed by two hex digits"))?;
                self.at += 2;
                out.push(value);
            }
            b'0'..=b'9' => {
                let mut value = u32::from(byte - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'9') => {
                            value = value * 10 + u32::from(d - b'0');
                            self.at += 1;
                        }
                        _ => break,
                    }
                }
                let value =
                    u8::try_from(value).map_err(|_| self.fail("a decimal escape above 255"))?;
                out.push(value);
            }
            b'u' => {
                let rest = &self.text[self.at..];
                let end = rest.iter().position(|&b| b == b'}');
                let code = match (rest.first(), end) {
                    (Some(b'{'), Some(end)) => std::str::from_utf8(&rest[1..end])
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .and_then(char::from_u32)
                        .map(|c| (c, end + 1)),
                    _ => None,
                };
                let (c, length) = code.ok_or_else(|| self.fail("a bad `\\u{...}` escape"))?;
                self.at += length;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            other => {
                self.at -= 1;
                return Err(self.fail(format!("an unknown escape `\\{}`", other as char)));
            }
        }
        Ok(())
    }

    fn utf8(&mut self, bytes: &[u8], start: usize) -> Result<String, SyntaxError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            self.at = start;
            self.fail("a string that is not UTF-8")
        })
    }
}

/// What a keyword where a statement or value should be means.
fn keyword_problem(keyword: &str) -> String {
    let what = match keyword {
        "for" | "while" | "repeat" | "until" | "break" | "goto" => "a loop",
        "function" | "return" => "a function",
        "if" | "then" | "else" | "elseif" => "a conditional",
        "local" => "a local variable",
        "nil" => "nil",
        "and" | "or" | "not" => "an operator",
        _ => "code",
    };
    format!("{what} (`{keyword}`); only assignments of plain values are allowed")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_manifest_and_a_rockspec() {
        let manifest = r#"
commands = {}
modules = {}
repository = {
   mod_bob = {
      ["3-1"] = {
         {
            arch = "rockspec"
         },
         {
            arch = "src"
         }
      }
   },
}
"#;
        let globals = parse("manifest", manifest).unwrap();
        let versions = globals.get("repository").unwrap().as_table().unwrap();
        let bob = versions.get("mod_bob").unwrap().as_table().unwrap();
        let arches = bob.get("3-1").unwrap().as_table().unwrap();
        assert_eq!(
            arches.items[1].as_table().unwrap().get("arch"),
            Some(&Value::String("src".into()))
        );

        let rockspec = r#"-- generated
package = "mod_lib_ldap"
version = "35-2"; rockspec_format = '3.0'
source = {
   url = "https://hg.example/archive/66b3085ecc49.tar.gz/mod_lib_ldap",
   dir = "Community-Modules-66b3085ecc49/mod_lib_ldap",
}
description = { summary = [==[Add "LDAP" ]] plugin suite]==],
   detailed = [[
two
lines]] }
--[[ a long
comment ]]
build = { type = "builtin", modules = { ldap = "ldap.lib.lua" }, n = 0x1F, f = 1.5e3 }
dependencies = { "mod_y", "mod_z >= 12", "esc\t\65\x42\u{e9}\z
      end" }
"#;
        let globals = parse("x.rockspec", rockspec).unwrap();
        let description = globals.get("description").unwrap().as_table().unwrap();
        assert_eq!(
            description.get("summary").unwrap().as_str(),
            Some(r#"Add "LDAP" ]] plugin suite"#)
        );
        assert_eq!(
            description.get("detailed").unwrap().as_str(),
            Some("two\nlines")
        );
        let build = globals.get("build").unwrap().as_table().unwrap();
        assert_eq!(build.get("n"), Some(&Value::Number(31.0)));
        assert_eq!(build.get("f"), Some(&Value::Number(1500.0)));
        let dependencies = globals.get("dependencies").unwrap().as_table().unwrap();
        assert_eq!(dependencies.items[2].as_str(), Some("esc\tABéend"));
    }

    #[test]
    fn refuses_code_with_the_position_and_what_it_is() {
        let deep = format!(
            "x = {}{}",
            "{".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let huge = format!("x = \"{}\"", "a".repeat(MAX_STRING + 1));
        let huge_long = format!("x = [[{}]]", "a".repeat(MAX_STRING + 1));
        let many = format!("x = {{{}}}", "1,".repeat(MAX_ITEMS + 1));
        let cases: Vec<(&str, &str)> = vec![
            (
                "os.execute(\"rm -rf /\")",
                "an assignment into a field of `os`",
            ),
            ("print(\"hi\")", "function call"),
            ("require \"x\"", "function call"),
            ("x = os.getenv(\"HOME\")", "a variable (`os`)"),
            ("x = f()", "a function call (`f...`)"),
            ("x = function() end", "a function (`function`)"),
            ("for i = 1, 10 do end", "a loop (`for`)"),
            ("while true do end", "a loop (`while`)"),
            (
                "x = 1\nrepeat until false",
                "line 2, column 1: a loop (`repeat`)",
            ),
            ("local x = 1", "a local variable"),
            ("x = \"a\" .. \"b\"", "an operator (`.`)"),
            ("x = 1 + 2", "an operator (`+`)"),
            ("x = -1", "an operator (`-`)"),
            ("x = { [1] = 2 }", "only string keys"),
            ("x = nil", "nil"),
            ("x = 1\nx = 2", "`x` is assigned twice"),
            ("x = { a = 1, a = 2 }", "key `a` given twice"),
            ("x = \"open", "never closed"),
            ("x = [[open", "never closed"),
            ("x = {", "the end of the file where a value was expected"),
            ("x = \"\\q\"", "unknown escape"),
            ("x = \"\\300\"", "above 255"),
            ("x = 1e999", "not a number"),
            ("x = { 1 2 }", "expected `,` or `}`"),
            ("x = {}[1]", "a call or an index"),
            (deep.as_str(), "nested deeper"),
            (huge.as_str(), "longer than"),
            (huge_long.as_str(), "longer than"),
            (many.as_str(), "more than"),
        ];
        for (text, expected) in cases {
            let error = parse("evil.rockspec", text).unwrap_err().to_string();
            assert!(
                error.starts_with("evil.rockspec, line ") && error.contains(expected),
                "{expected:?} not in {error:?}"
            );
        }
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let error = parse("m", "a = 1\n  é = 2").unwrap_err();
        assert_eq!((error.line, error.column), (2, 3));
        let error = parse("m", "a = 1\nb = { c = f }").unwrap_err();
        assert_eq!((error.line, error.column), (2, 11));
    }

    proptest::proptest! {
        /// Whatever a server sends, the reader answers without panicking,
        /// and an error always points inside the text.
        #[test]
        fn any_text_is_read_or_refused(text in "[a-z={}\\[\\]\"'\\\\,;. \n0-9-]{0,200}|\\PC{0,200}") {
            if let Err(error) = parse("fuzz", &text) {
                proptest::prop_assert!(error.line <= text.lines().count() + 1);
            }
        }
    }

    #[test]
    fn an_oversized_file_is_refused_before_reading() {
        let text = " ".repeat(MAX_INPUT + 1);
        assert!(parse("m", &text)
            .unwrap_err()
            .problem
            .contains("more than the"));
    }
}
