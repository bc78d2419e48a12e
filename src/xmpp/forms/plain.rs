//! A form as plain text, for the clients that show a form's later stages
//! poorly or not at all: the same form, read out line by line.

use minidom::Element;

use super::question::{BY_CHAT_FIELD, PLAN_FIELD};
use super::xml::{field_value, form_has_field};
use crate::ops::response::OUTCOME;
use crate::ops::{Outcome, CONFIRM_FIELD};
use crate::xmpp::command::NS_DATA;

/// Fields whose values read as prose without their label: the rows of a
/// table, the note of a table or message, and a question's plan.
const PROSE_FIELDS: [&str; 3] = ["rows", "note", PLAN_FIELD];

/// A form as plain text, for a client that shows a form's later stages
/// poorly or not at all (Psi 1.5, Poezio): its title, its instructions,
/// then each field as `Label: value` (a table's rows, notes and a plan as
/// they are). A question's form is its plan; where the client cannot
/// answer it (`answerable` false) the text says so and how to ask it by
/// chat.
pub fn plain_text(form: &Element, answerable: bool) -> String {
    let title = form
        .get_child("title", NS_DATA)
        .map(Element::text)
        .unwrap_or_default();
    let question = form_has_field(form, CONFIRM_FIELD);
    // A failure says so first, in its heading, rather than in an
    // `Outcome: failed` line under the command's name.
    let failed = field_value(form, OUTCOME.0).as_deref() == Some(Outcome::Failed.as_str());
    let mut lines = vec![match failed {
        true => format!("{title} failed:"),
        false => format!("{title}:"),
    }];
    lines.extend(
        form.get_child("instructions", NS_DATA)
            .map(Element::text)
            .filter(|text| !text.is_empty() && !question),
    );
    // A hidden field is for programs, never shown to a person; the
    // question's preset answer is the form's, said by the closing line.
    let shown = |c: &&Element| {
        c.is("field", NS_DATA)
            && c.attr("type") != Some("hidden")
            && c.attr("var") != Some(CONFIRM_FIELD)
            && !(failed && c.attr("var") == Some(OUTCOME.0))
    };
    for field in form.children().filter(shown) {
        let var = field.attr("var").unwrap_or_default();
        let values: Vec<String> = field
            .children()
            .filter(|v| v.is("value", NS_DATA))
            .map(Element::text)
            .collect();
        match (field.attr("label"), values.as_slice()) {
            (_, []) => {}
            (Some(label), [value]) if !PROSE_FIELDS.contains(&var) => {
                lines.push(format!("{label}: {value}"));
            }
            (Some(label), values) if !PROSE_FIELDS.contains(&var) => {
                lines.push(format!("{label}:"));
                lines.extend(values.iter().map(|v| format!("  {v}")));
            }
            (_, values) => lines.extend(values.iter().cloned()),
        }
    }
    if question {
        lines.push(match answerable {
            true => "Answer yes or no in the command's form.".into(),
            false => {
                let cannot = "This client cannot show this question's yes or no choice, \
                              so nothing was changed.";
                match field_value(form, BY_CHAT_FIELD) {
                    Some(line) => format!(
                        "{cannot} To ask the same in a chat with modman, send this line:\n\
                         {line}\nand answer yes or no there."
                    ),
                    None => format!(
                        "{cannot} Send the same command to modman in a chat and answer yes or no there."
                    ),
                }
            }
        });
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Details;
    use crate::xmpp::forms::question::{confirm_form, tests::remove_x};
    use crate::xmpp::forms::results::{details_form, failed_reply};

    #[test]
    fn as_plain_text_details_keep_their_labels_and_a_question_says_how_to_answer() {
        let details = Details {
            title: "mod_x".into(),
            fields: vec![
                ("summary", "Summary", "Does x".into()),
                ("files", "Files", "a.lua\nREADME.md".into()),
                ("stage", "Stage", String::new()),
            ],
            whole_at: vec![],
        };
        assert_eq!(
            plain_text(&details_form(&details), false),
            "mod_x:\nSummary: Does x\nFiles:\n  a.lua\n  README.md"
        );
        let form = confirm_form("Remove modules", &remove_x(), None);
        let question = plain_text(&form, false);
        assert!(
            question.starts_with("Remove modules:\nRemove:\n  x\nGo ahead?\n")
                && question.ends_with("answer yes or no there."),
            "{question}"
        );
        // The hidden `why` is for bots: not a line for a person.
        assert_eq!(question.lines().count(), 5, "{question}");
        // Where a chat line asks the same, the text gives it on a line
        // of its own, to be copied as it is.
        let line = "remove x";
        let with_line = plain_text(
            &confirm_form("Remove modules", &remove_x(), Some(line)),
            false,
        );
        assert!(with_line.lines().any(|l| l == line), "{with_line}");
        let answerable = plain_text(&form, true);
        // A failure says so in its first line, once, and its kind once.
        let error = crate::ops::OpError::conflict("Prosody could not load mod_x");
        let failed = failed_reply("install", "s".into(), "Install modules", "conflict", &error);
        let text = plain_text(&failed.form.unwrap(), false);
        assert_eq!(
            text.lines().next(),
            Some("Install modules failed:"),
            "{text}"
        );
        assert_eq!(text.matches("conflict").count(), 1, "{text}");
        assert!(
            answerable.starts_with("Remove modules:\nRemove:\n  x\nGo ahead?\n")
                && !answerable.contains("cannot"),
            "{answerable}"
        );
    }
}
