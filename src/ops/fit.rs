//! Responses cut to fit one stanza, whatever an operation returns.
//!
//! Prosody closes a component's stream on a stanza over 512 KiB: the admin
//! then gets nothing and modman reconnects. A repository decides how long
//! a README or a summary is, so `info` of a module with a 700 KB README,
//! or `list` of 200 rows with 3 KB summaries, would do that. Every front
//! end renders the neutral [`Response`], so it is cut here, once, before
//! any of them: the ad-hoc forms, the chat text and the plain text for
//! clients that show only a form's first stage all come from the cut
//! response. What is left out is said, with how many and where to look.

use super::changes::Changes;
use super::{Details, Form, Question, Response, Table};

/// Bytes of content one reply may carry, escaped and counted with the
/// markup of the largest rendering (a multi-item data form). With the
/// stanza's envelope (addresses, the command element, a note) a reply
/// stays under 256 KiB: half Prosody's limit, so a client on a slow link
/// is not held up, and room to spare for whatever is added on the way.
pub const REPLY_BYTES: usize = 192 * 1024;

/// The markup around each cell of a table in a multi-item form (`<field
/// var='...'><value>...</value></field>`), or its `label: ` in a text
/// line, whichever is longer.
const CELL: usize = 64;
/// Around each row (`<item>...</item>`) or each line of a value (`<value>`
/// in a `text-multi` field, its indent in text).
const LINE: usize = 16;
/// Around each field of a form or each labelled value.
const FIELD: usize = 128;
/// The longest a single cell may be: a summary is a sentence, and a cell
/// this long keeps any row (some ten columns) well inside the budget, so
/// at least the first row always fits.
const MAX_CELL: usize = 4096;
/// Kept back for the line saying what was left out.
const TRAILER: usize = 512;
/// The most rows one value may take on screen, a line counting one row
/// per [`ROW_WIDTH`] characters. Bytes alone do not keep a reply readable:
/// Gajim 1.7 never shows a result whose text wraps to some 2,000 rows
/// (seen with a 90 KB README of 1,000 lines of 89 characters, well inside
/// the byte budget), while 700 such lines show. The rest of a README is in
/// its archive, which the cut names.
const MAX_ROWS: usize = 600;
/// Characters in one row of a client's result window, for [`MAX_ROWS`].
const ROW_WIDTH: usize = 100;

impl Response {
    /// This response, cut so that any rendering of it takes at most about
    /// `budget` bytes: a table loses its last rows, labelled values and
    /// questions their last lines, a form its last fields, each with a
    /// line saying what went. Unchanged when it fits.
    pub fn fit(self, budget: usize) -> Response {
        match self {
            Response::Table(table) => Response::Table(fit_table(table, budget)),
            Response::Details(details) => Response::Details(fit_details(details, budget)),
            Response::Confirm(question) => Response::Confirm(fit_question(question, budget)),
            Response::Form(form) => Response::Form(fit_form(form, budget)),
        }
    }
}

/// Bytes `text` takes in a stanza once escaped (`&amp;` for `&`, and so
/// on), whichever way it is escaped.
fn cost(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .map(|b| match b {
                b'&' => 4,
                b'<' | b'>' => 3,
                b'\'' | b'"' => 5,
                _ => 0,
            })
            .sum::<usize>()
}

fn row_cost(row: &[String]) -> usize {
    LINE + row.iter().map(|cell| cost(cell) + CELL).sum::<usize>()
}

/// How many of `items`, from the first, fit in `budget` bytes together,
/// each taking `size`.
fn fitting<T>(items: &[T], budget: usize, size: impl Fn(&T) -> usize) -> usize {
    let mut left = budget;
    items
        .iter()
        .take_while(|item| match left.checked_sub(size(item)) {
            Some(rest) => {
                left = rest;
                true
            }
            None => false,
        })
        .count()
}

fn fit_table(mut table: Table, budget: usize) -> Table {
    for cell in table.rows.iter_mut().flatten() {
        if cost(cell) > MAX_CELL {
            *cell = cut_line(cell, MAX_CELL);
        }
    }
    let fixed = cost(&table.title)
        + cost(&table.note)
        + table
            .columns
            .iter()
            .map(|(var, label)| cost(var) + cost(label) + CELL)
            .sum::<usize>()
        + TRAILER;
    let fitting = fitting(&table.rows, budget.saturating_sub(fixed), |row| {
        row_cost(row)
    });
    let left_out = table.rows.len() - fitting;
    if left_out > 0 {
        table.rows.truncate(fitting);
        let line = format!(
            "{left_out} more rows were left out to keep this reply within one message; narrow the request to see them (list QUERY shows the modules whose name or summary has QUERY)."
        );
        table.note = match table.note.is_empty() {
            true => line,
            false => format!("{} {line}", table.note),
        };
    }
    table
}

/// Rows `line` takes on screen, wrapped at [`ROW_WIDTH`] characters.
fn rows(line: &str) -> usize {
    1 + line.chars().count() / ROW_WIDTH
}

fn fit_details(mut details: Details, budget: usize) -> Details {
    let field_cost = |value: &str| FIELD + cost(value) + LINE * value.lines().count();
    let total: usize = details.fields.iter().map(|(_, _, v)| field_cost(v)).sum();
    let mut left = budget.saturating_sub(cost(&details.title));
    let too_tall = |value: &str| value.lines().map(rows).sum::<usize>() > MAX_ROWS;
    if total <= left && !details.fields.iter().any(|(_, _, v)| too_tall(v)) {
        return details;
    }
    // Each field in turn, smallest first, may take an equal share of what
    // is left: small fields stay whole, the largest are cut.
    let mut order: Vec<usize> = (0..details.fields.len()).collect();
    order.sort_by_key(|&i| field_cost(&details.fields[i].2));
    let count = order.len();
    for (done, i) in order.into_iter().enumerate() {
        let share = left / (count - done);
        let (var, _, value) = &mut details.fields[i];
        if field_cost(value) > share || too_tall(value) {
            let whole_at = details
                .whole_at
                .iter()
                .find(|(of, _)| of == var)
                .map(|(_, at)| at.as_str());
            *value = cut(value, share.saturating_sub(FIELD), whole_at);
        }
        left = left.saturating_sub(field_cost(value));
    }
    details
}

/// A question's changes are said twice (in its text, and apart for
/// JSON): those apart get at most half the budget, the first
/// modules first, and the text the rest.
fn fit_question(mut question: Question, budget: usize) -> Question {
    let size = |changes: &Changes| {
        FIELD
            + changes
                .lines()
                .iter()
                .map(|line| cost(line) + LINE)
                .sum::<usize>()
    };
    let fitting = fitting(&question.changes, budget / 2, size);
    question.changes.truncate(fitting);
    let apart: usize = question.changes.iter().map(size).sum();
    question.text = cut(&question.text, budget.saturating_sub(apart), None);
    question
}

fn fit_form(mut form: Form, budget: usize) -> Form {
    let instructions = budget / 4;
    if cost(&form.instructions) > instructions {
        form.instructions = cut(&form.instructions, instructions, None);
    }
    let left = budget.saturating_sub(cost(&form.title) + cost(&form.instructions) + TRAILER);
    let fitting = fitting(&form.fields, left, |field| {
        FIELD
            + cost(&field.var)
            + cost(&field.label)
            + cost(&field.help)
            + field.values.iter().map(|v| cost(v) + LINE).sum::<usize>()
    });
    let left_out = form.fields.len() - fitting;
    if left_out > 0 {
        form.fields.truncate(fitting);
        form.instructions += &format!(
            "\n{left_out} more fields were left out to keep this form within one message; they keep their values."
        );
    }
    form
}

/// `text` cut to about `budget` bytes and at most [`MAX_ROWS`] rows on
/// screen, at a line's end (or inside a line that alone is longer),
/// followed by a line saying how many lines were left out and, if known,
/// where the whole can be read.
fn cut(text: &str, budget: usize, whole_at: Option<&str>) -> String {
    let mut left = budget.saturating_sub(TRAILER);
    // One row kept back for the line saying what was left out.
    let mut rows_left = MAX_ROWS - 1;
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<String> = Vec::new();
    let mut whole = 0;
    for line in &lines {
        let Some(rows_after) = rows_left.checked_sub(rows(line)) else {
            // A first line taller than the whole screen is shown in part.
            if whole == 0 {
                kept.push(cut_line(
                    line,
                    (rows_left * ROW_WIDTH).min(left.saturating_sub(LINE)),
                ));
            }
            break;
        };
        rows_left = rows_after;
        // With its line break.
        match left.checked_sub(cost(line) + LINE + 1) {
            Some(rest) => {
                left = rest;
                kept.push((*line).to_owned());
                whole += 1;
            }
            None => {
                // A first line longer than the whole budget is shown in
                // part, so a text of one long line still shows its start.
                if whole == 0 && left > LINE {
                    kept.push(cut_line(line, left - LINE));
                }
                break;
            }
        }
    }
    let more = lines.len() - whole;
    if more == 0 {
        return text.to_owned();
    }
    let mut trailer = format!("... ({more} more lines");
    if let Some(at) = whole_at {
        trailer += &format!("; {at}");
    }
    trailer += ")";
    kept.push(trailer);
    kept.join("\n")
}

/// The start of `line` that takes at most `budget` bytes escaped, cut at
/// a character's boundary, with an ellipsis.
fn cut_line(line: &str, budget: usize) -> String {
    let mut used = 0;
    let end = line
        .char_indices()
        .take_while(|(_, c)| {
            used += cost(c.encode_utf8(&mut [0; 4]));
            used <= budget.saturating_sub(3)
        })
        .last()
        .map(|(at, c)| at + c.len_utf8())
        .unwrap_or(0);
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize, summary: &str) -> Table {
        Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("summary", "Summary")],
            rows: (0..rows)
                .map(|i| vec![format!("m{i}"), summary.to_owned()])
                .collect(),
            note: format!("{rows} modules."),
        }
    }

    fn readme(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("Line {i} of a README that goes on & on <and on>."))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn details(description: String) -> Details {
        Details {
            title: "mod_x".into(),
            fields: vec![
                ("module", "Module", "x".into()),
                ("files", "Files", "mod_x.lua\nREADME.markdown".into()),
                ("description", "Description", description),
            ],
            whole_at: vec![(
                "description",
                "the whole README is in http://127.0.0.1/x.tar.gz".into(),
            )],
        }
    }

    /// What a response would take, counted as the cut counts it.
    fn size(response: &Response) -> usize {
        match response {
            Response::Table(t) => {
                cost(&t.title) + cost(&t.note) + t.rows.iter().map(|r| row_cost(r)).sum::<usize>()
            }
            Response::Details(d) => d
                .fields
                .iter()
                .map(|(_, _, v)| FIELD + cost(v) + LINE * v.lines().count())
                .sum(),
            Response::Confirm(q) => cost(&q.text),
            Response::Form(f) => {
                cost(&f.instructions) + f.fields.iter().map(|f| cost(&f.help)).sum::<usize>()
            }
        }
    }

    #[test]
    fn what_fits_is_left_as_it_is() {
        let small = Response::Table(table(200, "Short summary."));
        assert_eq!(small.clone().fit(REPLY_BYTES), small);
        let info = Response::Details(details(readme(100)));
        assert_eq!(info.clone().fit(REPLY_BYTES), info);
    }

    #[test]
    fn a_table_loses_its_last_rows_and_says_how_many() {
        let summary = "word ".repeat(600);
        let Response::Table(cut) = Response::Table(table(200, &summary)).fit(REPLY_BYTES) else {
            panic!("not a table");
        };
        let kept = cut.rows.len();
        assert!(kept > 10 && kept < 200, "{kept}");
        assert_eq!(
            cut.rows[kept - 1][0],
            format!("m{}", kept - 1),
            "the first rows are kept, in order"
        );
        assert!(size(&Response::Table(cut.clone())) <= REPLY_BYTES);
        assert!(cut.note.starts_with("200 modules. "), "{}", cut.note);
        assert!(
            cut.note.contains(&format!("{} more rows", 200 - kept)),
            "{}",
            cut.note
        );
        assert!(cut.note.contains("list QUERY"), "{}", cut.note);
    }

    #[test]
    fn a_long_readme_is_cut_with_where_to_read_the_whole() {
        let long = readme(15_000);
        assert!(long.len() > 700_000);
        let Response::Details(cut) = Response::Details(details(long)).fit(REPLY_BYTES) else {
            panic!("not details");
        };
        assert!(size(&Response::Details(cut.clone())) <= REPLY_BYTES);
        assert_eq!(cut.fields[0].2, "x", "small fields stay whole");
        assert_eq!(cut.fields[1].2, "mod_x.lua\nREADME.markdown");
        let description = &cut.fields[2].2;
        let shown = description.lines().count() - 1;
        assert!(description.starts_with("Line 0 of a README"));
        let last = description.lines().last().unwrap();
        assert_eq!(
            last,
            format!(
                "... ({} more lines; the whole README is in http://127.0.0.1/x.tar.gz)",
                15_000 - shown
            )
        );
    }

    /// 1,000 lines of 89 characters are 90 KB, well inside the byte
    /// budget, but wrap to some 2,000 rows: Gajim 1.7 never shows such a
    /// result, so the README is cut to what a screen can hold.
    #[test]
    fn a_readme_taller_than_a_client_can_show_is_cut_by_rows() {
        let line = "x".repeat(89);
        let tall = vec![line.as_str(); 1_000].join("\n");
        assert!(cost(&tall) < REPLY_BYTES / 2);
        let Response::Details(cut) = Response::Details(details(tall)).fit(REPLY_BYTES) else {
            panic!("not details");
        };
        let description = &cut.fields[2].2;
        assert!(description.lines().map(rows).sum::<usize>() <= MAX_ROWS);
        let shown = description.lines().count() - 1;
        assert_eq!(shown, MAX_ROWS - 1);
        assert_eq!(
            description.lines().last().unwrap(),
            format!(
                "... ({} more lines; the whole README is in http://127.0.0.1/x.tar.gz)",
                1_000 - shown
            )
        );
        // One line as tall as the screen shows its start.
        let one = "y".repeat(ROW_WIDTH * MAX_ROWS * 2);
        let Response::Details(cut) = Response::Details(details(one)).fit(REPLY_BYTES) else {
            panic!("not details");
        };
        let description = &cut.fields[2].2;
        assert!(description.lines().map(rows).sum::<usize>() <= MAX_ROWS + 1);
        assert!(description.starts_with("yyy"));
    }

    #[test]
    fn a_question_keeps_the_first_modules_changes_within_half_the_budget() {
        let mut proposal = crate::ops::confirm::Proposal::always_asked("Update");
        for i in 0..400 {
            let module = format!("m{i:03}");
            proposal.step(format!("{module}: 1 -> 2"), format!("{module} 1 -> 2"));
            let mut entry = crate::repo::index::tests::entry(&module);
            entry.changes = (0..20)
                .map(|c| crate::repo::index::Change {
                    id: format!("{c:07x}"),
                    date: crate::repo::index::Timestamp::now(),
                    summary: "a commit message of some length ".repeat(4),
                })
                .collect();
            let record = crate::engine::state::InstalledModule::for_test("r", "1", '0');
            let forward = crate::ops::updates::Direction::Forward;
            proposal.changes(Changes::between(
                &module,
                (&record, &[]),
                &entry,
                &[],
                forward,
            ));
        }
        let Err(Response::Confirm(question)) = proposal.decide(&crate::ops::Consent::NotAsked)
        else {
            panic!("not a question");
        };
        let Response::Confirm(cut) = Response::Confirm(question.clone()).fit(REPLY_BYTES) else {
            panic!("not a question");
        };
        let kept = cut.changes.len();
        assert!(kept > 10 && kept < 400, "{kept}");
        assert_eq!(cut.changes[..], question.changes[..kept]);
        let apart: usize = (cut.changes.iter())
            .flat_map(|c| c.lines())
            .map(|l| cost(&l) + LINE)
            .sum();
        assert!(apart + cost(&cut.text) <= REPLY_BYTES);
        assert!(
            cut.text.ends_with("more lines)"),
            "{}",
            &cut.text[cut.text.len() - 80..]
        );
    }

    #[test]
    fn one_long_line_shows_its_start_cut_at_a_character() {
        let line = "é<".repeat(200_000);
        let details = Details {
            title: "mod_x".into(),
            fields: vec![("summary", "Summary", line.clone())],
            whole_at: vec![],
        };
        let Response::Details(cut) = Response::Details(details).fit(4096) else {
            panic!("not details");
        };
        let text = &cut.fields[0].2;
        assert!(cost(text) <= 4096, "{}", cost(text));
        let (start, trailer) = text.split_once('\n').unwrap();
        assert!(start.ends_with('…') && line.starts_with(start.trim_end_matches('…')));
        assert_eq!(trailer, "... (1 more lines)");
    }
}
