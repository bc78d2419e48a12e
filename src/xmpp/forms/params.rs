//! The forms that ask: an operation's parameters (module pickers with a
//! free-text field beside them, a version picker, the dry-run box), the
//! fields an operation asks for, and a submitted form read back into
//! `(var, values)` pairs with each picker's typed names folded in.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType};

use super::xml::{field_element, form_element, option_element, text_element};
use crate::ops::context::LABEL_SEPARATOR;
use crate::ops::{Access, Context, FieldKind, Form, Input, Param, ParamKind, Spec, DRY_RUN_FIELD};
use crate::xmpp::command::NS_DATA;
use crate::xmpp::fleet::across::fleet_fields;

/// Most module names offered as options; beyond it a client gets only the
/// free-text field (the name is still checked when submitted).
const MAX_OPTIONS: usize = 500;

/// The label of the dry-run box of a changing operation's form.
const DRY_RUN_LABEL: &str = "Show what would happen (change nothing)";

/// What a dry run asked by form says to do next: the box is the way in.
pub const CARRY_OUT: &str = "run the command again with \"Show what would happen\" unticked";

/// The suffix of the free-text field that goes with each module picker,
/// for names that are not among the options (`modules` + `_typed`).
const TYPED_SUFFIX: &str = "_typed";

/// The suffix of the version picker that goes with a module picker of
/// [`ParamKind::Versioned`] (`modules` + `_version`): `name@version`
/// values, folded into the picker like the free-text field.
const VERSIONS_SUFFIX: &str = "_version";

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
                    form.append_child(typed_field(param, &typed));
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
                let hosts = ctx.engine.server.hosts();
                let (offered, typed): (Vec<String>, Vec<String>) =
                    values.iter().cloned().partition(|v| hosts.contains(v));
                let mut field = param_field(param, "list-multi", &offered);
                for host in &hosts {
                    field.append_child(option_element(host, host));
                }
                form.append_child(field);
                // Movim shows no list-multi: its users type the hosts.
                form.append_child(typed_field(param, &typed));
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
        let mut field = field_element(DRY_RUN_FIELD, "boolean", DRY_RUN_LABEL);
        field.append_child(text_element(
            "desc",
            "Only show the plan: nothing is fetched, written or loaded.",
        ));
        field.append_child(text_element("value", "0"));
        form.append_child(field);
    }
    for field in fleet_fields(ctx, spec.node) {
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

/// The free-text field that goes with `param`'s picker, for names not
/// among its options or a client that shows no list-multi (Movim),
/// holding `typed`.
fn typed_field(param: &Param, typed: &[String]) -> Element {
    let label = typed_label(param.label);
    let mut field = field_element(&typed_var(param.var), "text-single", &label);
    field.append_child(text_element("desc", "Empty: only those ticked above."));
    if !typed.is_empty() {
        field.append_child(text_element("value", &typed.join(" ")));
    }
    field
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
            p.var == var
                && matches!(
                    p.kind,
                    ParamKind::Modules(_) | ParamKind::Versioned(_) | ParamKind::Hosts
                )
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn hosts_typed_beside_the_host_picker_join_the_hosts_ticked() {
        const HOSTS: &[Param] = &[Param {
            var: "hosts",
            label: "Hosts (empty: every VirtualHost)",
            help: "",
            kind: ParamKind::Hosts,
            required: false,
        }];
        let raw = vec![
            ("hosts".to_owned(), vec!["a.example".to_owned()]),
            (
                "hosts_typed".to_owned(),
                vec!["b.example c.example".to_owned()],
            ),
        ];
        assert_eq!(
            fold_typed(HOSTS, raw),
            [(
                "hosts".to_owned(),
                vec!["a.example".to_owned(), "b.example c.example".to_owned()]
            )]
        );
        let field = typed_field(&HOSTS[0], &["b.example".to_owned()]);
        assert_eq!(field.attr("var"), Some("hosts_typed"));
        assert_eq!(field.attr("type"), Some("text-single"));
    }
}
