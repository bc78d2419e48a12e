//! XEP-0004 data forms: an operation's parameters as a `form`, a
//! [`Table`] as a `result` with `<reported/>` and `<item/>` (which
//! xmpp-parsers 0.23's `DataForm` cannot express), and submitted forms
//! read back into raw `(var, values)` pairs.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType};

use super::command::NS_DATA;
use super::name;
use crate::ops::{Context, Details, FieldKind, Form, ParamKind, Spec, Table, CONFIRM_FIELD};

/// Most module names offered as options; beyond it a client gets a free
/// list (the name is still checked when submitted).
const MAX_OPTIONS: usize = 500;

/// The form asking for `spec`'s parameters. Module fields offer the
/// names that make sense now (available for install, installed for
/// remove), so clients such as Gajim show a pick list.
pub fn parameters_form(spec: &Spec, ctx: &Context) -> Element {
    let mut form = form_element("form", spec.name);
    form.append_child(text_element("instructions", spec.instructions));
    for param in spec.params {
        let (kind, options, default): (_, Vec<(String, String)>, _) = match param.kind {
            ParamKind::Text => ("text-single", vec![], None),
            ParamKind::Choice(choices) => (
                "list-single",
                choices
                    .iter()
                    .map(|(v, l)| (v.to_string(), l.to_string()))
                    .collect(),
                choices.first().map(|(v, _)| *v),
            ),
            ParamKind::Modules(choice) => {
                ("list-multi", options_of(ctx.module_choices(choice)), None)
            }
            ParamKind::Hosts => ("list-multi", options_of(ctx.engine.server.hosts()), None),
            ParamKind::Boolean => ("boolean", vec![], Some("0")),
            ParamKind::Options => ("text-multi", vec![], None),
        };
        let mut field = field_element(param.var, kind, param.label);
        field.append_child(text_element("desc", param.help));
        if param.required {
            field.append_child(Element::bare("required", NS_DATA));
        }
        if let Some(default) = default {
            field.append_child(text_element("value", default));
        }
        for (value, label) in options {
            let mut option = Element::builder("option", NS_DATA)
                .attr(name("label"), label)
                .build();
            option.append_child(text_element("value", &value));
            field.append_child(option);
        }
        form.append_child(field);
    }
    form
}

/// Names as (value, label) options, unless there are too many to list.
fn options_of(names: Vec<String>) -> Vec<(String, String)> {
    if names.len() > MAX_OPTIONS {
        return vec![];
    }
    names.into_iter().map(|n| (n.clone(), n)).collect()
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
        let mut child = field_element(&field.var, kind, &field.label);
        if !field.help.is_empty() {
            child.append_child(text_element("desc", &field.help));
        }
        if field.required {
            child.append_child(Element::bare("required", NS_DATA));
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

/// The form asking to confirm `question`: one boolean, `confirm`.
pub fn confirm_form(title: &str, question: &str) -> Element {
    let mut form = form_element("form", title);
    form.append_child(text_element("instructions", question));
    let mut field = field_element(CONFIRM_FIELD, "boolean", "Go ahead");
    field.append_child(text_element("value", "0"));
    form.append_child(field);
    form
}

/// Labelled values as a `result` form, one field each; a multi-line value
/// becomes a `text-multi` field with one value per line.
pub fn details_form(details: &Details) -> Element {
    let mut form = form_element("result", &details.title);
    for (var, label, value) in &details.fields {
        let kind = if value.contains('\n') {
            "text-multi"
        } else {
            "text-single"
        };
        let mut field = field_element(var, kind, label);
        for line in value.lines() {
            field.append_child(text_element("value", line));
        }
        form.append_child(field);
    }
    form
}

fn field_element(var: &str, kind: &str, label: &str) -> Element {
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
