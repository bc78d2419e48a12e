//! XEP-0004 data forms: an operation's parameters as a `form`, results as
//! a `result` (a single-item form every client shows, or a [`Table`] with
//! `<reported/>` and `<item/>` for clients known to render one, which
//! xmpp-parsers 0.23's `DataForm` cannot express), questions as a required
//! yes/no choice, and submitted forms read back into raw `(var, values)`
//! pairs.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType};

use super::command::{CommandReply, Note, Status, NOTE_WIDTH, NS_DATA};
use super::name;
use crate::engine::Outcome as HostState;
use crate::ops::context::LABEL_SEPARATOR;
use crate::ops::{
    Access, Context, Details, FieldKind, Form, Input, OpError, Outcome, Param, ParamKind, Question,
    Spec, Table, CONFIRM_FIELD, DRY_RUN_FIELD,
};

/// Most module names offered as options; beyond it a client gets only the
/// free-text field (the name is still checked when submitted).
const MAX_OPTIONS: usize = 500;

/// The suffix of the free-text field that goes with each module picker,
/// for names that are not among the options (`modules` + `_typed`).
const TYPED_SUFFIX: &str = "_typed";

/// The suffix of the version picker that goes with a module picker of
/// [`ParamKind::Versioned`] (`modules` + `_version`): `name@version`
/// values, folded into the picker like the free-text field.
const VERSIONS_SUFFIX: &str = "_version";

/// How much of a result form the requester's client shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// Multi-item tables render, with a note beside them: Movim,
    /// Cheogram, and bots (slixmpp), which read the cells by column.
    Tables,
    /// Tables, with the outcome line as the form's title and no `<note>`
    /// beside it: Gajim 2. Its "Completed" page packs notes above the
    /// form in a box that does not expand, and the form in a scrolled
    /// window that does; a wrapping note label reserves its height as if
    /// each character were a line, so even a one-line note leaves an
    /// empty gap and squeezes the table into a strip at the bottom. A
    /// table's title is shown as a heading above it (its instructions are
    /// not shown). Gajim 1.8.2 and later.
    TitledTables,
    /// Only single-item forms are known to render. Gajim 1.7 hangs on a
    /// table, Psi 1.5 and Profanity 0.13 show nothing of one; a client
    /// that does not say what it is gets this too.
    SingleItem,
    /// Single-item forms, and only the reply to the first `execute` is
    /// shown: Psi 1.5 closes its dialog on any later reply. What comes
    /// after a form also goes to it as a chat message.
    FirstReplyOnly,
    /// Single-item forms whose multi-line fields are hard to read:
    /// Poezio shows a `text-multi` value one line at a time, cut at the
    /// edge. Every result and question also goes to it as a chat
    /// message, which it wraps.
    WithChatCopy,
}

impl Rendering {
    /// What the client that answered XEP-0092 with `name` and `version`
    /// shows.
    pub fn of_client(name: &str, version: &str) -> Rendering {
        let name = name.trim().to_lowercase();
        match name.as_str() {
            "gajim" if version_at_least(version, &[1, 8, 2]) => Rendering::TitledTables,
            "movim" | "cheogram" | "slixmpp" => Rendering::Tables,
            "psi" => Rendering::FirstReplyOnly,
            "poezio" => Rendering::WithChatCopy,
            _ => Rendering::SingleItem,
        }
    }

    /// What a client shows known only by its XEP-0115 caps node (its
    /// home page, by convention), which names the client but not its
    /// version: Gajim 1.7 and 2 share theirs, so a Gajim known this way
    /// gets single-item forms until it tells its version.
    pub fn of_caps_node(node: &str) -> Rendering {
        let node = node.trim().trim_end_matches('/').to_lowercase();
        let host = node
            .split("://")
            .nth(1)
            .unwrap_or(&node)
            .split('/')
            .next()
            .unwrap_or_default();
        match host.trim_start_matches("www.") {
            "movim.eu" | "cheogram.com" | "slixmpp.com" => Rendering::Tables,
            "psi-im.org" | "psi-plus.com" => Rendering::FirstReplyOnly,
            "poez.io" => Rendering::WithChatCopy,
            _ => Rendering::SingleItem,
        }
    }

    /// Whether a reply also goes to the client as a chat message: after
    /// a form for Psi, every result and question for Poezio.
    pub fn copies_to_chat(self, later_stage: bool, reply: &CommandReply) -> bool {
        match self {
            Rendering::FirstReplyOnly => later_stage,
            Rendering::WithChatCopy => {
                reply.status == Status::Completed
                    || reply
                        .form
                        .as_ref()
                        .is_some_and(|form| form_has_field(form, CONFIRM_FIELD))
            }
            Rendering::Tables | Rendering::TitledTables | Rendering::SingleItem => false,
        }
    }

    /// Whether a result's outcome goes in its form's title rather than
    /// in a note beside the form.
    pub fn note_in_title(self) -> bool {
        self == Rendering::TitledTables
    }
}

/// Whether the dotted `version` (`1.8.2`, `2.0.1-dev`) is `min` or later;
/// a version that does not start with a number is not.
fn version_at_least(version: &str, min: &[u32]) -> bool {
    let parts: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .map_while(|p| p.parse().ok())
        .collect();
    !parts.is_empty() && parts.as_slice() >= min
}

/// The form asking for `spec`'s parameters, filled with `previous` when
/// the admin went back from a question. Module fields offer the names that
/// make sense now, labelled `name - summary`, next to a free-text field
/// for any other name. Every field's help is in the instructions too,
/// since some clients (Gajim) do not show field descriptions.
pub fn parameters_form(spec: &Spec, ctx: &Context, previous: Option<&Input>) -> Element {
    let mut form = form_element("form", spec.name);
    let mut instructions = vec![spec.instructions.to_owned()];
    instructions.extend(
        spec.params
            .iter()
            .filter(|p| !p.help.is_empty())
            .map(|p| format!("{}: {}", p.label, p.help)),
    );
    form.append_child(text_element("instructions", &instructions.join("\n")));
    for param in spec.params {
        let values = previous
            .and_then(|input| input.value(param.var))
            .map(|value| value.shown())
            .unwrap_or_default();
        match param.kind {
            ParamKind::Modules(choice) | ParamKind::Versioned(choice) => {
                let options = ctx.module_choices(choice);
                let (offered, typed): (Vec<String>, Vec<String>) = values
                    .iter()
                    .cloned()
                    .partition(|v| options.iter().any(|(name, _)| name == v));
                if options.len() <= MAX_OPTIONS && !options.is_empty() {
                    // Not marked required: a name typed below is as good
                    // as a tick, and clients would not let it through.
                    let mut field = param_field(param, "list-multi", &offered);
                    field.remove_child("required", NS_DATA);
                    for (value, label) in &options {
                        field.append_child(option_element(value, label));
                    }
                    form.append_child(field);
                    let label = typed_label(param.label);
                    let mut other = field_element(&typed_var(param.var), "text-single", &label);
                    other.append_child(text_element("desc", "Empty: only those ticked above."));
                    if !typed.is_empty() {
                        other.append_child(text_element("value", &typed.join(" ")));
                    }
                    form.append_child(other);
                } else {
                    let joined = values.join(" ");
                    let value: Vec<String> =
                        (!joined.is_empty()).then_some(joined).into_iter().collect();
                    form.append_child(param_field(param, "text-single", &value));
                }
                if let ParamKind::Versioned(choice) = param.kind {
                    let versions = ctx.version_choices(choice);
                    if !versions.is_empty() && versions.len() <= MAX_OPTIONS {
                        form.append_child(version_picker(param.var, &versions));
                    }
                }
            }
            ParamKind::Hosts => {
                let mut field = param_field(param, "list-multi", &values);
                for host in ctx.engine.server.hosts() {
                    field.append_child(option_element(&host, &host));
                }
                form.append_child(field);
            }
            ParamKind::Choice(choices) => {
                let chosen = match values.is_empty() {
                    true => choices.iter().take(1).map(|(v, _)| v.to_string()).collect(),
                    false => values,
                };
                let mut field = param_field(param, "list-single", &chosen);
                for (value, label) in choices {
                    field.append_child(option_element(value, label));
                }
                form.append_child(field);
            }
            ParamKind::Text | ParamKind::Reason => {
                form.append_child(param_field(param, "text-single", &values));
            }
            ParamKind::Options => {
                form.append_child(param_field(param, "text-multi", &values));
            }
            ParamKind::Boolean => {
                let ticked = values.first().is_some_and(|v| v == "true");
                let value = [if ticked { "1" } else { "0" }.to_owned()];
                form.append_child(param_field(param, "boolean", &value));
            }
        }
    }
    if spec.access == Access::Change {
        let mut field = field_element(
            DRY_RUN_FIELD,
            "boolean",
            "Show what would happen (change nothing)",
        );
        field.append_child(text_element(
            "desc",
            "Only show the plan: nothing is fetched, written or loaded.",
        ));
        field.append_child(text_element("value", "0"));
        form.append_child(field);
    }
    for field in super::fleet::request::fleet_fields(ctx, spec.node) {
        form.append_child(field);
    }
    form
}

/// A field for `param` holding `values`.
fn param_field(param: &Param, kind: &str, values: &[String]) -> Element {
    let mut field = field_element(param.var, kind, param.label);
    field.append_child(text_element("desc", param.help));
    if param.required {
        field.append_child(Element::bare("required", NS_DATA));
    }
    for value in values {
        field.append_child(text_element("value", value));
    }
    field
}

/// The fields an operation asks for, typed: a secret as `text-private`
/// (never with its value), lists as `text-multi`.
pub fn fields_form(form: &Form) -> Element {
    let mut element = form_element("form", &form.title);
    element.append_child(text_element("instructions", &form.instructions));
    for field in &form.fields {
        let kind = match field.kind {
            FieldKind::Text => "text-single",
            FieldKind::Secret => "text-private",
            FieldKind::Boolean => "boolean",
            FieldKind::Lines => "text-multi",
        };
        // Marked in the label, not as `<required/>`: see FormField::needed.
        let label = match field.needed {
            true => format!("{} (needed)", field.label),
            false => field.label.clone(),
        };
        let mut child = field_element(&field.var, kind, &label);
        if !field.help.is_empty() {
            child.append_child(text_element("desc", &field.help));
        }
        if field.kind != FieldKind::Secret {
            for value in &field.values {
                child.append_child(text_element("value", value));
            }
        }
        element.append_child(child);
    }
    element
}

/// Whether `form` has a field named `var`.
fn form_has_field(form: &Element, var: &str) -> bool {
    form.children()
        .any(|c| c.is("field", NS_DATA) && c.attr("var") == Some(var))
}

pub(super) fn option_element(value: &str, label: &str) -> Element {
    let mut option = Element::builder("option", NS_DATA)
        .attr(name("label"), label)
        .build();
    option.append_child(text_element("value", value));
    option
}

/// The label of the free-text field under a module picker: the picker's
/// own label without its "(empty: all)" remark, which does not hold for
/// names typed.
fn typed_label(label: &str) -> String {
    let base = label.split(" (").next().unwrap_or(label);
    format!("{base} not listed above (names, space-separated)")
}

/// The list of `name@version` choices that goes with a versioned module
/// picker. Its first option, chosen, is "none": clients such as Gajim 2
/// show the first option of a list-single as picked even when the form
/// gives no value, so without it the newest version looked chosen while
/// nothing was sent.
fn version_picker(var: &str, versions: &[(String, String)]) -> Element {
    let mut field = field_element(
        &versions_var(var),
        "list-single",
        "Or a module at a chosen version",
    );
    field.append_child(text_element(
        "desc",
        "Every version the repositories offer; an older one than installed is asked about first.",
    ));
    field.append_child(text_element("value", NO_VERSION_VALUE));
    field.append_child(option_element(NO_VERSION_VALUE, NO_VERSION));
    for (value, label) in versions {
        field.append_child(option_element(value, label));
    }
    field
}

/// The label of the version picker's "none" option.
const NO_VERSION: &str = "(none: the modules above, at their newest)";

/// The value of the version picker's "none" option: not empty, as
/// Profanity 0.15 crashes on a list option whose value is empty, and never
/// a module name (those have no parentheses).
const NO_VERSION_VALUE: &str = "(none)";

fn typed_var(var: &str) -> String {
    format!("{var}{TYPED_SUFFIX}")
}

fn versions_var(var: &str) -> String {
    format!("{var}{VERSIONS_SUFFIX}")
}

/// Submitted values with each module picker's free-text field folded into
/// the picker, so the operation sees one list of names. A picked value
/// that is a whole option label (`name - summary`), as Gajim 1.7 submits
/// from a list-multi, counts as its name.
pub fn fold_typed(params: &[Param], raw: Vec<(String, Vec<String>)>) -> Vec<(String, Vec<String>)> {
    let is_picker = |var: &str| {
        params.iter().any(|p| {
            p.var == var && matches!(p.kind, ParamKind::Modules(_) | ParamKind::Versioned(_))
        })
    };
    let is_versioned = |var: &str| {
        params
            .iter()
            .any(|p| p.var == var && matches!(p.kind, ParamKind::Versioned(_)))
    };
    let mut folded: Vec<(String, Vec<String>)> = Vec::new();
    for (var, mut values) in raw {
        let versions = var
            .strip_suffix(VERSIONS_SUFFIX)
            .filter(|base| is_versioned(base));
        if versions.is_some() {
            // The "none" option of the version picker.
            values.retain(|value| {
                !value.is_empty() && value != NO_VERSION_VALUE && value != NO_VERSION
            });
        }
        if is_picker(&var) || versions.is_some() {
            for value in &mut values {
                if let Some((name, _summary)) = value.split_once(LABEL_SEPARATOR) {
                    *value = name.to_owned();
                }
            }
        }
        let target = match var
            .strip_suffix(TYPED_SUFFIX)
            .filter(|base| is_picker(base))
            .or(versions)
        {
            Some(base) => base.to_owned(),
            None => var,
        };
        match folded.iter_mut().find(|(v, _)| *v == target) {
            Some((_, existing)) => existing.extend(values),
            None => folded.push((target, values)),
        }
    }
    folded
}

/// The labels of the question's answers; "no" comes first so a client
/// that picks the first option by itself changes nothing.
const ANSWERS: [(&str, &str); 2] = [("no", "No, change nothing"), ("yes", "Yes, go ahead")];

/// What a question's form says above its fields; the plan itself is a
/// field, since Poezio never shows instructions.
const QUESTION_INSTRUCTIONS: &str = "Read the plan, then choose yes or no.";

/// The form asking to confirm `question`: the plan as a `plan` field
/// every client shows, what an update changes as fields of their own,
/// then a required yes/no choice, `confirm`, with nothing chosen. Only
/// the answer is read back (see adhoc's read_answer), whatever a client
/// submits of the rest.
pub fn confirm_form(title: &str, question: &Question) -> Element {
    let mut form = form_element("form", title);
    form.append_child(text_element("instructions", QUESTION_INSTRUCTIONS));
    let mut plan = field_element(PLAN_FIELD, "text-multi", "Plan");
    for line in question.text.lines() {
        plan.append_child(text_element("value", line));
    }
    form.append_child(plan);
    for changes in &question.changes {
        let (var, label) = Question::field_of(changes);
        let lines = changes.lines();
        append_text_field(&mut form, &var, &label, lines.iter().map(String::as_str));
    }
    let mut field = field_element(CONFIRM_FIELD, "list-single", "Go ahead? (choose yes or no)");
    field.append_child(Element::bare("required", NS_DATA));
    for (value, label) in ANSWERS {
        field.append_child(option_element(value, label));
    }
    form.append_child(field);
    form
}

/// The field of a question's form that holds the plan.
pub const PLAN_FIELD: &str = "plan";

/// A failed command as a completed `result` every client shows (Poezio
/// and Profanity 0.13 show nothing of a stanza error after a form): one
/// short error note, and the facts as fields a bot reads. `outcome` is
/// `failed` (as a failed row's cell says), `condition` the stanza error
/// it would have been, `error` and `state` the words `--json` uses, `text`
/// the whole account and `left` what could not be undone.
pub fn failed_reply(
    node: &str,
    session_id: String,
    title: &str,
    condition: &str,
    error: &OpError,
) -> CommandReply {
    let text = error.to_string();
    let (state, left) = error.state_name();
    let mut form = form_element("result", title);
    for (var, label, value) in [
        ("outcome", "Outcome", Outcome::Failed.as_str()),
        ("text", "What failed", text.as_str()),
        ("condition", "Condition", condition),
        ("error", "Kind", error.kind_name()),
        ("state", "State now", state),
    ]
    .into_iter()
    .chain(left.map(|left| ("left", "Left as it is", left)))
    {
        // Clients show a single value on one line, cut at the window's
        // edge (Gajim 2): an account of a failure goes in short lines.
        let lines = wrap(value, NOTE_WIDTH);
        append_text_field(&mut form, var, label, lines.iter().map(String::as_str));
    }
    let note = match error.outcome {
        HostState::NothingChanged => "Failed; nothing was changed. Why is below.",
        HostState::Undone => "Failed; everything it did was undone. Why is below.",
        HostState::PartlyChanged(_) => "Failed, and not wholly undone: see what is left below.",
    };
    CommandReply {
        node: node.to_owned(),
        session_id,
        status: Status::Completed,
        actions: vec![],
        notes: vec![Note::error(note)],
        form: Some(form),
    }
}

/// `text` in lines of at most `width` characters, broken between words
/// (a longer word, such as a path, keeps a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// Labelled values as a `result` form, one field each; a multi-line value
/// becomes a `text-multi` field with one value per line.
pub fn details_form(details: &Details) -> Element {
    let mut form = form_element("result", &details.title);
    for (var, label, value) in &details.fields {
        append_text_field(&mut form, var, label, value.lines());
    }
    form
}

/// A short text as a single-item `result` form, for clients that show
/// notes apart from the form or not at all (Profanity, Psi).
pub fn message_form(title: &str, text: &str) -> Element {
    let mut form = form_element("result", title);
    append_text_field(&mut form, "note", "Result", text.lines());
    form
}

/// A table as a single-item `result` form every client shows: one line
/// per row (see [`crate::text::row_lines`]) in a `text-multi` field, then
/// the note.
pub fn table_text_form(table: &Table) -> Element {
    let mut form = form_element("result", &table.title);
    if !table.rows.is_empty() {
        let lines: Vec<String> = crate::text::row_lines(table);
        append_text_field(
            &mut form,
            "rows",
            &table.title,
            lines.iter().map(String::as_str),
        );
    }
    if !table.note.is_empty() {
        append_text_field(&mut form, "note", "Result", table.note.lines());
    }
    form
}

/// A `text-single` field, or `text-multi` when there is more than one
/// line.
fn append_text_field<'a>(
    form: &mut Element,
    var: &str,
    label: &str,
    lines: impl Iterator<Item = &'a str>,
) {
    let lines: Vec<&str> = lines.collect();
    let kind = if lines.len() > 1 {
        "text-multi"
    } else {
        "text-single"
    };
    let mut field = field_element(var, kind, label);
    for line in lines {
        field.append_child(text_element("value", line));
    }
    form.append_child(field);
}

pub(super) fn field_element(var: &str, kind: &str, label: &str) -> Element {
    Element::builder("field", NS_DATA)
        .attr(name("var"), var)
        .attr(name("type"), kind)
        .attr(name("label"), label)
        .build()
}

/// A table as a `result` form: one `<reported/>` naming the columns, one
/// `<item/>` per row.
pub fn table_form(table: &Table) -> Element {
    let mut form = form_element("result", &table.title);
    // Top-level fields beside items are not shown by table clients; the
    // instructions are, so a note too long for one line is whole there.
    if !Note::holds(&table.note) {
        form.append_child(text_element("instructions", &table.note));
    }
    let mut reported = Element::bare("reported", NS_DATA);
    for (var, label) in &table.columns {
        reported.append_child(field_element(var, "text-single", label));
    }
    form.append_child(reported);
    for row in &table.rows {
        let mut item = Element::bare("item", NS_DATA);
        for ((var, _), cell) in table.columns.iter().zip(row) {
            let mut field = Element::builder("field", NS_DATA)
                .attr(name("var"), *var)
                .build();
            field.append_child(text_element("value", cell));
            item.append_child(field);
        }
        form.append_child(item);
    }
    form
}

/// A table as the result form `rendering` shows: multi-item where
/// tables render, one line per row elsewhere.
pub fn table_result(table: &Table, rendering: Rendering) -> Element {
    match rendering {
        Rendering::Tables => table_form(table),
        Rendering::TitledTables => {
            let mut form = table_form(table);
            let title = Note::info(&table.note).text().to_owned();
            if !title.is_empty() {
                if let Some(element) = form.children_mut().find(|child| child.is("title", NS_DATA))
                {
                    *element = text_element("title", &title);
                }
            }
            form
        }
        Rendering::SingleItem | Rendering::FirstReplyOnly | Rendering::WithChatCopy => {
            table_text_form(table)
        }
    }
}

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
    let mut lines = vec![format!("{title}:")];
    lines.extend(
        form.get_child("instructions", NS_DATA)
            .map(Element::text)
            .filter(|text| !text.is_empty() && !question),
    );
    for field in form.children().filter(|c| c.is("field", NS_DATA)) {
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
                "This client cannot show the answer to this question, so nothing was changed. \
                      Send the same command to modman in a chat and answer yes or no there."
                    .into()
            }
        });
    }
    lines.join("\n")
}

/// Reads a submitted form into `(var, values)` pairs. Anything that is not
/// a well-formed `submit` form is refused with a sentence saying why.
pub fn submitted_values(element: &Element) -> Result<Vec<(String, Vec<String>)>, String> {
    let form = DataForm::try_from(element.clone())
        .map_err(|e| format!("the data form could not be read: {e}"))?;
    if form.type_ != DataFormType::Submit {
        return Err("the data form is not of type 'submit'".into());
    }
    Ok(form
        .fields
        .into_iter()
        .filter_map(|field| field.var.map(|var| (var, field.values)))
        .collect())
}

fn form_element(kind: &str, title: &str) -> Element {
    let mut form = Element::builder("x", NS_DATA)
        .attr(name("type"), kind)
        .build();
    form.append_child(text_element("title", title));
    form
}

fn text_element(element_name: &str, text: &str) -> Element {
    Element::builder(element_name, NS_DATA).append(text).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Response, REPLY_BYTES};

    /// Bytes `form` takes written as XML.
    fn written(form: &Element) -> usize {
        let mut bytes = Vec::new();
        form.write_to(&mut bytes).unwrap();
        bytes.len()
    }

    #[test]
    fn every_rendering_of_a_fitted_response_stays_under_the_stanza_budget() {
        const STANZA: usize = 256 * 1024;
        let summary = "A summary & <its> \"quoted\" words. ".repeat(100);
        assert!(summary.len() > 3000);
        let columns = vec![
            ("module", "Module"),
            ("installed", "Installed"),
            ("available", "Available"),
            ("update", "Update"),
            ("enabled", "Enabled on"),
            ("loaded", "Loaded on"),
            ("stage", "Stage"),
            ("summary", "Summary"),
        ];
        let rows = (0..200)
            .map(|i| {
                let mut row = vec![format!("module_{i}")];
                row.extend(
                    ["1.0", "1.1", "1.1", "a.example", "a.example", "beta"].map(String::from),
                );
                row.push(summary.clone());
                row
            })
            .collect();
        let table = Table {
            title: "Modules".into(),
            columns,
            rows,
            note: "200 modules.".into(),
        };
        let Response::Table(table) = Response::Table(table).fit(REPLY_BYTES) else {
            unreachable!()
        };
        assert!(table.rows.len() < 200);
        let text_form = table_text_form(&table);
        for size in [
            written(&table_form(&table)),
            written(&text_form),
            plain_text(&text_form, false).len(),
            crate::text::render(&Response::Table(table.clone())).len(),
        ] {
            assert!(size < STANZA, "{size}");
        }

        let readme: Vec<String> = (0..12_000)
            .map(|i| format!("Line {i} of a README & its <markup>, \"quoted\"."))
            .collect();
        let details = Details {
            title: "mod_x".into(),
            fields: vec![("description", "Description", readme.join("\n"))],
            whole_at: vec![],
        };
        let Response::Details(details) = Response::Details(details).fit(REPLY_BYTES) else {
            unreachable!()
        };
        let form = details_form(&details);
        for size in [
            written(&form),
            plain_text(&form, false).len(),
            crate::text::render(&Response::Details(details.clone())).len(),
        ] {
            assert!(size < STANZA, "{size}");
        }
    }

    #[test]
    fn a_table_round_trips_through_reported_and_items() {
        let table = Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("files", "Files")],
            rows: vec![
                vec!["firewall".into(), "12".into()],
                vec!["lastlog".into(), "1".into()],
            ],
            note: String::new(),
        };
        let form = table_form(&table);
        assert_eq!(form.attr("type"), Some("result"));
        let labels: Vec<_> = form
            .get_child("reported", NS_DATA)
            .unwrap()
            .children()
            .map(|f| f.attr("label").unwrap().to_owned())
            .collect();
        assert_eq!(labels, ["Module", "Files"]);
        let rows: Vec<Vec<String>> = form
            .children()
            .filter(|c| c.is("item", NS_DATA))
            .map(|item| {
                item.children()
                    .map(|f| f.get_child("value", NS_DATA).unwrap().text())
                    .collect()
            })
            .collect();
        assert_eq!(rows, table.rows);
    }

    #[test]
    fn what_a_client_shows_follows_its_own_name_and_version() {
        for (name, version, expected) in [
            ("Gajim", "1.7.3", Rendering::SingleItem),
            ("Gajim", "1.8.1", Rendering::SingleItem),
            ("Gajim", "1.8.2", Rendering::TitledTables),
            ("Gajim", "2.0.1-dev", Rendering::TitledTables),
            ("Movim", "0.28", Rendering::Tables),
            ("Slixmpp", "1.8.3", Rendering::Tables),
            ("Psi", "1.5-dev (2021-08-22)", Rendering::FirstReplyOnly),
            ("Profanity", "0.13.1", Rendering::SingleItem),
            ("Gajim", "unknown", Rendering::SingleItem),
            ("Gajim", "2.1.1", Rendering::TitledTables),
            ("Poezio", "0.15.1", Rendering::WithChatCopy),
            ("", "", Rendering::SingleItem),
        ] {
            assert_eq!(
                Rendering::of_client(name, version),
                expected,
                "{name} {version}"
            );
        }
    }

    #[test]
    fn a_caps_node_names_the_client_but_not_gajims_version() {
        for (node, expected) in [
            ("https://gajim.org", Rendering::SingleItem),
            ("http://gajim.org/", Rendering::SingleItem),
            ("https://poez.io", Rendering::WithChatCopy),
            ("https://psi-im.org", Rendering::FirstReplyOnly),
            ("https://movim.eu/", Rendering::Tables),
            ("http://cheogram.com", Rendering::Tables),
            ("http://slixmpp.com/ver/1.8.3", Rendering::Tables),
            ("http://conversations.im", Rendering::SingleItem),
            ("", Rendering::SingleItem),
        ] {
            assert_eq!(Rendering::of_caps_node(node), expected, "{node}");
        }
    }

    #[test]
    fn a_failure_is_a_completed_command_with_an_error_note_and_its_facts() {
        let mut error = OpError::conflict("Prosody could not load mod_x");
        error.outcome = HostState::Undone;
        let reply = failed_reply("install", "s".into(), "Install modules", "conflict", &error);
        assert_eq!(reply.status, Status::Completed);
        assert_eq!(reply.notes.len(), 1);
        assert_eq!(reply.notes[0].kind, super::super::command::NoteKind::Error);
        let form = reply.form.unwrap();
        let value = |var: &str| {
            form.children()
                .find(|f| f.attr("var") == Some(var))
                .and_then(|f| f.get_child("value", NS_DATA))
                .map(Element::text)
        };
        assert_eq!(value("outcome").as_deref(), Some("failed"));
        assert_eq!(value("condition").as_deref(), Some("conflict"));
        assert_eq!(value("state").as_deref(), Some("undone"));
        let text: Vec<String> = form
            .children()
            .filter(|f| f.attr("var") == Some("text"))
            .flat_map(|f| f.children().map(Element::text))
            .collect();
        assert_eq!(text.join(" "), error.to_string());
        assert!(text.iter().all(|l| l.chars().count() <= NOTE_WIDTH));
        assert_eq!(value("left"), None);
    }

    #[test]
    fn a_table_note_longer_than_a_line_is_whole_in_the_instructions() {
        let mut table = Table {
            title: "Installed".into(),
            columns: vec![("module", "Module")],
            rows: vec![vec!["x".into()]],
            note: "Installed x.".into(),
        };
        assert!(!table_form(&table).has_child("instructions", NS_DATA));
        table.note =
            "Installed x 1.0 on localhost. Enabled and loaded on localhost. It needs y.".into();
        assert_eq!(
            table_form(&table)
                .get_child("instructions", NS_DATA)
                .map(Element::text),
            Some(table.note.clone())
        );
    }

    #[test]
    fn gajim_2_gets_the_outcome_as_the_table_title_and_others_the_table_title() {
        let table = Table {
            title: "Installed".into(),
            columns: vec![("module", "Module")],
            rows: vec![vec!["x".into()]],
            note: "Installed x.".into(),
        };
        let title = |rendering| {
            table_result(&table, rendering)
                .get_child("title", NS_DATA)
                .map(Element::text)
        };
        assert_eq!(title(Rendering::TitledTables), Some("Installed x.".into()));
        assert_eq!(title(Rendering::Tables), Some("Installed".into()));
        assert!(Rendering::TitledTables.note_in_title());
        assert!(!Rendering::Tables.note_in_title());
        assert!(!Rendering::SingleItem.note_in_title());
    }

    #[test]
    fn every_client_gets_a_table_as_one_line_per_row_and_the_note() {
        let table = Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("summary", "Summary")],
            rows: vec![
                vec!["firewall".into(), "A firewall".into()],
                vec!["lastlog".into(), String::new()],
            ],
            note: "2 modules.".into(),
        };
        let form = table_text_form(&table);
        assert_eq!(form.attr("type"), Some("result"));
        assert!(!form.has_child("reported", NS_DATA));
        assert!(!form.has_child("item", NS_DATA));
        assert_eq!(
            plain_text(&form, false),
            "Modules:\nfirewall - A firewall\nlastlog\n2 modules."
        );
    }

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
        let form = confirm_form("Remove modules", &remove_x());
        let question = plain_text(&form, false);
        assert!(
            question.starts_with("Remove modules:\nRemove:\n  x\nGo ahead?\n")
                && question.ends_with("answer yes or no there."),
            "{question}"
        );
        let answerable = plain_text(&form, true);
        assert!(
            answerable.starts_with("Remove modules:\nRemove:\n  x\nGo ahead?\n")
                && !answerable.contains("cannot"),
            "{answerable}"
        );
    }

    /// The question "Remove:\n  x\nGo ahead?".
    fn remove_x() -> Question {
        let mut proposal = crate::ops::confirm::Proposal::always_asked("Remove");
        proposal.step("x".into(), "x".into());
        match proposal.decide(&crate::ops::Consent::NotAsked) {
            Err(crate::ops::Response::Confirm(question)) => question,
            other => panic!("not a question: {other:?}"),
        }
    }

    #[test]
    fn the_question_is_its_plan_then_a_required_yes_or_no_with_nothing_chosen() {
        let form = confirm_form("Remove modules", &remove_x());
        let fields: Vec<&Element> = form.children().filter(|c| c.is("field", NS_DATA)).collect();
        let plan: Vec<String> = fields[0].children().map(Element::text).collect();
        assert_eq!(fields[0].attr("var"), Some(PLAN_FIELD));
        assert_eq!(plan, ["Remove:", "  x", "Go ahead?"]);
        let field = fields[1];
        assert_eq!(field.attr("var"), Some(CONFIRM_FIELD));
        assert_eq!(field.attr("type"), Some("list-single"));
        assert!(field.has_child("required", NS_DATA));
        assert!(
            !field.has_child("value", NS_DATA),
            "nothing is chosen for the admin"
        );
        let values: Vec<String> = field
            .children()
            .filter_map(|o| o.get_child("value", NS_DATA))
            .map(Element::text)
            .collect();
        assert_eq!(values, ["no", "yes"]);
    }

    #[test]
    fn typed_names_and_submitted_labels_become_module_names() {
        const PARAMS: &[Param] = &[Param {
            var: "modules",
            label: "Modules",
            help: "",
            kind: ParamKind::Modules(crate::ops::ModuleChoice::Available),
            required: true,
        }];
        let raw = vec![
            (
                "modules".to_owned(),
                vec!["announce - Prosody's own".to_owned(), "csi".to_owned()],
            ),
            (
                "modules_typed".to_owned(),
                vec!["lastlog mod_smacks".to_owned()],
            ),
            ("query_typed".to_owned(), vec!["kept as it is".to_owned()]),
        ];
        assert_eq!(
            fold_typed(PARAMS, raw),
            [
                (
                    "modules".to_owned(),
                    vec![
                        "announce".to_owned(),
                        "csi".to_owned(),
                        "lastlog mod_smacks".to_owned()
                    ]
                ),
                ("query_typed".to_owned(), vec!["kept as it is".to_owned()]),
            ]
        );
        // A version picked goes with the names, for a versioned picker only.
        const VERSIONED: &[Param] = &[Param {
            kind: ParamKind::Versioned(crate::ops::ModuleChoice::Installed),
            ..PARAMS[0]
        }];
        let raw = vec![
            ("modules".to_owned(), vec!["csi".to_owned()]),
            (
                "modules_version".to_owned(),
                vec!["lastlog@20240601".to_owned()],
            ),
        ];
        let expected = [(
            "modules".to_owned(),
            vec!["csi".to_owned(), "lastlog@20240601".to_owned()],
        )];
        // A client that submits the option's label, as Gajim 1.7 does.
        let labelled = vec![
            ("modules".to_owned(), vec!["csi".to_owned()]),
            (
                "modules_version".to_owned(),
                vec!["lastlog@20240601 - earlier, from local".to_owned()],
            ),
        ];
        assert_eq!(fold_typed(VERSIONED, labelled), expected);
        // The version picker left at "none" adds nothing.
        for none in ["", NO_VERSION_VALUE, NO_VERSION] {
            let untouched = vec![
                ("modules".to_owned(), vec!["csi".to_owned()]),
                ("modules_version".to_owned(), vec![none.to_owned()]),
            ];
            assert_eq!(
                fold_typed(VERSIONED, untouched),
                [("modules".to_owned(), vec!["csi".to_owned()])]
            );
        }
        assert_eq!(fold_typed(VERSIONED, raw.clone()), expected);
        assert_eq!(fold_typed(PARAMS, raw)[1].0, "modules_version");
    }

    #[test]
    fn the_version_picker_starts_at_none_and_the_typed_field_reads_as_a_label() {
        let versions = [(
            "lastlog@2".to_owned(),
            "lastlog@2 - newest, from debian".to_owned(),
        )];
        let field = version_picker("modules", &versions);
        let options: Vec<String> = field
            .children()
            .filter(|c| c.name() == "option")
            .map(|o| o.attr("label").unwrap_or_default().to_owned())
            .collect();
        assert_eq!(options, [NO_VERSION, "lastlog@2 - newest, from debian"]);
        let value = field.children().find(|c| c.name() == "value").unwrap();
        assert_eq!(value.text(), NO_VERSION_VALUE);
        // Every option has a value: Profanity 0.15 crashes on an empty one.
        assert!(field.children().filter(|c| c.name() == "option").all(|o| !o
            .children()
            .next()
            .unwrap()
            .text()
            .is_empty()));

        assert_eq!(
            typed_label("Modules (empty: all)"),
            "Modules not listed above (names, space-separated)"
        );
        assert_eq!(
            typed_label("Modules"),
            "Modules not listed above (names, space-separated)"
        );
    }

    #[test]
    fn submitted_values_are_read_by_var() {
        let xml = "<x xmlns='jabber:x:data' type='submit'>\
                   <field var='query'><value>smacks</value></field>\
                   <field var='modules'><value>a</value><value>b</value></field></x>";
        let values = submitted_values(&xml.parse().unwrap()).unwrap();
        assert_eq!(values[0], ("query".to_owned(), vec!["smacks".to_owned()]));
        assert_eq!(values[1].1, ["a", "b"]);
    }

    #[test]
    fn forms_that_are_not_submissions_are_refused() {
        for xml in [
            "<x xmlns='jabber:x:data' type='form'/>",
            "<x xmlns='jabber:x:data' type='bogus'/>",
            "<x xmlns='jabber:x:data'/>",
            "<x xmlns='jabber:x:data' type='submit'><field var='a' type='no-such-type'/></x>",
        ] {
            assert!(submitted_values(&xml.parse().unwrap()).is_err(), "{xml}");
        }
    }
}
