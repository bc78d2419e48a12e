//! What fits Psi 1.5's command dialog. It sizes a `text-single` to about
//! 30 characters and cuts the rest from view (a refresh's result read
//! "ules with an update."), and a `text-multi` to a box of about six
//! lines that scrolls (a check's result); the admin cannot widen either
//! usefully. A result that does not fit goes to Psi as a chat message too.

use minidom::Element;

use crate::xmpp::command::NS_DATA;

/// The characters of a `text-single` Psi shows without scrolling.
const LINE_WIDTH: usize = 30;

/// The lines of a `text-multi` Psi shows without scrolling, each value
/// wrapped at [`LINE_WIDTH`].
const BOX_LINES: usize = 6;

/// Whether every field of `form` reads whole in Psi's dialog: no
/// `text-single` value wider than it shows, no `text-multi` taller.
pub fn fits_psi_dialog(form: &Element) -> bool {
    form.children()
        .filter(|c| c.is("field", NS_DATA))
        .all(|field| {
            let values = field
                .children()
                .filter(|v| v.is("value", NS_DATA))
                .map(|v| v.text().chars().count());
            match field.attr("type") {
                Some("text-multi") => {
                    values
                        .map(|chars| chars.div_ceil(LINE_WIDTH).max(1))
                        .sum::<usize>()
                        <= BOX_LINES
                }
                Some("hidden") => true,
                // A text-single, the default type, or any other one-line
                // field.
                _ => values.into_iter().all(|chars| chars <= LINE_WIDTH),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::forms::xml::{field_element, form_element, text_element};

    fn form_with(kind: &str, values: &[&str]) -> Element {
        let mut form = form_element("result", "Result");
        let mut field = field_element("f", kind, "F");
        for value in values {
            field.append_child(text_element("value", value));
        }
        form.append_child(field);
        form
    }

    #[test]
    fn a_long_line_or_a_tall_box_does_not_fit_psi() {
        assert!(fits_psi_dialog(&form_with("text-single", &["Refreshed."])));
        let cut = "84 modules on offer; 2 installed modules with an update.";
        assert!(!fits_psi_dialog(&form_with("text-single", &[cut])));
        assert!(fits_psi_dialog(&form_with("text-multi", &["a", "b", "c"])));
        let tall = ["line"; BOX_LINES + 1];
        assert!(!fits_psi_dialog(&form_with("text-multi", &tall)));
        // Wrapped, two long values fill the box as well.
        let long = "x".repeat(LINE_WIDTH * 3 + 1);
        assert!(!fits_psi_dialog(&form_with("text-multi", &[&long, &long])));
        assert!(fits_psi_dialog(&form_with("hidden", &[cut])));
    }
}
