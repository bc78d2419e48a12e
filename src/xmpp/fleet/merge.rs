//! One answer for the whole fleet: every server's `list` rows (read back
//! from the result form each one sent, this server's own included) merged
//! into one table of module × server, with drift marked and each server
//! that failed or did not answer in a row of its own.

use std::collections::{BTreeMap, BTreeSet};

use minidom::Element;

use super::relay::PeerFailure;
use crate::ops::response::OUTCOME;
use crate::ops::{Outcome, Response, Table, REPLY_BYTES};
use crate::xmpp::command::NS_DATA;

/// Rows read from one server's answer at most: beyond it the answer is
/// refused as unreadable rather than held.
pub const MAX_ROWS_PER_SERVER: usize = 20_000;

/// The cells of one row of a server's table, by field var.
pub type Row = BTreeMap<String, String>;

/// Whether a module is the same on every server that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// Installed at the same version (or nowhere) on every server.
    Same,
    /// Installed on some servers and not others, or at other versions.
    Differs,
}

impl Drift {
    /// The cell's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Drift::Same => "same",
            Drift::Differs => "differs",
        }
    }
}

/// The columns of a server's table carried into the merged one.
const CARRIED: [&str; 4] = ["installed", "update", "enabled", "loaded"];

/// The rows of the result form in a `<command/>` answer.
pub fn rows_of(command: &Element) -> Result<Vec<Row>, PeerFailure> {
    let unreadable = |why: &str| PeerFailure::Unreadable(why.to_owned());
    let form = command
        .get_child("x", NS_DATA)
        .filter(|x| x.attr("type") == Some("result"))
        .ok_or_else(|| unreadable("no result form"))?;
    let mut rows = Vec::new();
    for item in form.children().filter(|c| c.is("item", NS_DATA)) {
        if rows.len() == MAX_ROWS_PER_SERVER {
            return Err(unreadable("more rows than a server may send"));
        }
        let row: Row = item
            .children()
            .filter(|f| f.is("field", NS_DATA))
            .filter_map(|field| {
                let values: Vec<String> = field
                    .children()
                    .filter(|v| v.is("value", NS_DATA))
                    .map(Element::text)
                    .collect();
                Some((field.attr("var")?.to_owned(), values.join("\n")))
            })
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

/// [`merge`], cut to fit one reply stanza like every other answer (a
/// table of 100 servers × hundreds of modules would not): the rows left
/// out are counted in the note. The failed rows come last, so a cut
/// keeps the modules of the first servers whole.
pub fn fitted(answers: &[(String, Result<Vec<Row>, PeerFailure>)]) -> Table {
    let Response::Table(table) = Response::Table(merge(answers)).fit(REPLY_BYTES) else {
        unreachable!("fitting a table leaves a table")
    };
    table
}

/// The rows of a table this server's own operation answered.
pub fn rows_of_table(table: &Table) -> Vec<Row> {
    table
        .rows
        .iter()
        .map(|row| {
            table
                .columns
                .iter()
                .zip(row)
                .map(|((var, _), cell)| ((*var).to_owned(), cell.clone()))
                .collect()
        })
        .collect()
}

/// The merged table: for each module any server lists, one row per server
/// that answered, marked [`Drift::Differs`] when the installed versions
/// differ; then one failed row per server without an answer.
pub fn merge(answers: &[(String, Result<Vec<Row>, PeerFailure>)]) -> Table {
    let answered: Vec<(&str, BTreeMap<&str, &Row>)> = answers
        .iter()
        .filter_map(|(server, answer)| {
            let rows = answer.as_ref().ok()?;
            let by_module = rows
                .iter()
                .filter_map(|row| Some((row.get("module")?.as_str(), row)))
                .collect();
            Some((server.as_str(), by_module))
        })
        .collect();
    let modules: BTreeSet<&str> = answered
        .iter()
        .flat_map(|(_, rows)| rows.keys().copied())
        .collect();
    let mut rows = Vec::new();
    let mut drifting = 0;
    for module in &modules {
        let installed = |rows: &BTreeMap<&str, &Row>| {
            rows.get(module)
                .and_then(|row| row.get("installed"))
                .cloned()
                .unwrap_or_default()
        };
        let versions: BTreeSet<String> = answered.iter().map(|(_, r)| installed(r)).collect();
        let drift = match versions.len() {
            0 | 1 => Drift::Same,
            _ => Drift::Differs,
        };
        drifting += usize::from(drift == Drift::Differs);
        for (server, by_module) in &answered {
            let row = by_module.get(module);
            let mut cells = vec![(*module).to_owned(), (*server).to_owned()];
            cells.extend(
                CARRIED
                    .iter()
                    .map(|var| row.and_then(|r| r.get(*var)).cloned().unwrap_or_default()),
            );
            cells.extend([
                drift.as_str().to_owned(),
                Outcome::Ok.as_str().to_owned(),
                String::new(),
                String::new(),
            ]);
            rows.push(cells);
        }
    }
    let mut failed = Vec::new();
    for (server, answer) in answers {
        if let Err(failure) = answer {
            failed.push(server.as_str());
            let mut cells = vec![String::new(), server.clone()];
            cells.extend(CARRIED.iter().map(|_| String::new()));
            cells.extend([
                String::new(),
                Outcome::Failed.as_str().to_owned(),
                failure.kind().to_owned(),
                failure.to_string(),
            ]);
            rows.push(cells);
        }
    }
    let mut note = format!(
        "{} of {} servers answered; {drifting} of {} modules differ across them.",
        answered.len(),
        answers.len(),
        modules.len()
    );
    if !failed.is_empty() {
        note += &format!(
            " No answer from {}: their rows say why; nothing was changed anywhere.",
            failed.join(", ")
        );
    }
    Table {
        title: "Modules across the fleet".into(),
        columns: vec![
            ("module", "Module"),
            ("server", "Server"),
            ("installed", "Installed"),
            ("update", "Update"),
            ("enabled", "Enabled on"),
            ("loaded", "Loaded on"),
            ("drift", "Drift"),
            OUTCOME,
            ("failure", "Failure"),
            ("problem", "Problem"),
        ],
        rows,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(module: &str, installed: &str) -> Row {
        [("module", module), ("installed", installed)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn drift_is_marked_per_module_and_failures_get_their_own_row() {
        let answers = vec![
            (
                "a.test".to_owned(),
                Ok(vec![row("lastlog", "1"), row("motd", "2")]),
            ),
            ("b.test".to_owned(), Ok(vec![row("lastlog", "1")])),
            ("c.test".to_owned(), Err(PeerFailure::Timeout(10))),
        ];
        let table = merge(&answers);
        let column = |var: &str| table.columns.iter().position(|c| c.0 == var).unwrap();
        let cells: Vec<(&str, &str, &str, &str)> = table
            .rows
            .iter()
            .map(|r| {
                (
                    r[column("module")].as_str(),
                    r[column("server")].as_str(),
                    r[column("drift")].as_str(),
                    r[column("outcome")].as_str(),
                )
            })
            .collect();
        assert_eq!(
            cells,
            [
                ("lastlog", "a.test", "same", "ok"),
                ("lastlog", "b.test", "same", "ok"),
                ("motd", "a.test", "differs", "ok"),
                ("motd", "b.test", "differs", "ok"),
                ("", "c.test", "", "failed"),
            ]
        );
        assert!(table.failed());
    }

    #[test]
    fn a_hundred_servers_fit_one_stanza() {
        let summary = "x".repeat(300);
        let answers: Vec<_> = (0..100)
            .map(|server| {
                let rows = (0..300)
                    .map(|module| {
                        let mut row = row(&format!("mod{module}"), &format!("{server}"));
                        row.insert("loaded".into(), summary.clone());
                        row
                    })
                    .collect();
                (format!("s{server}.example.org"), Ok(rows))
            })
            .collect();
        let table = fitted(&answers);
        let form = String::from(&crate::xmpp::forms::results::table_form(&table));
        assert!(form.len() < 256 * 1024, "{} bytes", form.len());
        assert!(table.rows.len() < 30_000 && !table.rows.is_empty());
    }

    #[test]
    fn rows_are_read_from_a_result_form_only() {
        let command: Element = "<command xmlns='http://jabber.org/protocol/commands'>\
            <x xmlns='jabber:x:data' type='result'><reported><field var='module'/></reported>\
            <item><field var='module'><value>lastlog</value></field></item></x></command>"
            .parse()
            .unwrap();
        assert_eq!(
            rows_of(&command).unwrap(),
            [row("lastlog", "")
                .into_iter()
                .filter(|(k, _)| k == "module")
                .collect::<Row>()]
        );
        let form: Element = "<command xmlns='http://jabber.org/protocol/commands'>\
            <x xmlns='jabber:x:data' type='form'/></command>"
            .parse()
            .unwrap();
        assert!(rows_of(&form).is_err());
    }
}
