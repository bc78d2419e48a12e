//! The XML of XEP-0004 data forms: building a form, its fields and
//! values, as every form of modman is written. Nothing here knows what a
//! form is for.

use minidom::Element;

use crate::xmpp::command::NS_DATA;
use crate::xmpp::name;

/// Whether `form` has a field named `var`.
pub fn form_has_field(form: &Element, var: &str) -> bool {
    form.children()
        .any(|c| c.is("field", NS_DATA) && c.attr("var") == Some(var))
}

/// The first value of `form`'s field `var`, if it has one.
pub fn field_value(form: &Element, var: &str) -> Option<String> {
    form.children()
        .find(|c| c.is("field", NS_DATA) && c.attr("var") == Some(var))?
        .get_child("value", NS_DATA)
        .map(Element::text)
}

pub fn option_element(value: &str, label: &str) -> Element {
    let mut option = Element::builder("option", NS_DATA)
        .attr(name("label"), label)
        .build();
    option.append_child(text_element("value", value));
    option
}

/// A `text-single` field, or `text-multi` when there is more than one
/// line.
pub fn append_text_field<'a>(
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

pub fn field_element(var: &str, kind: &str, label: &str) -> Element {
    Element::builder("field", NS_DATA)
        .attr(name("var"), var)
        .attr(name("type"), kind)
        .attr(name("label"), label)
        .build()
}

pub fn form_element(kind: &str, title: &str) -> Element {
    let mut form = Element::builder("x", NS_DATA)
        .attr(name("type"), kind)
        .build();
    form.append_child(text_element("title", title));
    form
}

pub fn text_element(element_name: &str, text: &str) -> Element {
    Element::builder(element_name, NS_DATA).append(text).build()
}
