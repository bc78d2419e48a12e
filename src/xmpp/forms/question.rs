//! The form that asks to confirm a change: its plan in a field every
//! client shows, then a required yes or no.

use minidom::Element;

use super::xml::{field_element, form_element, option_element, text_element};
use crate::ops::{Question, CONFIRM_FIELD};
use crate::xmpp::command::NS_DATA;

/// The answers to a question, (value, label); "no" comes first so a client
/// that picks the first option by itself changes nothing.
pub const ANSWERS: [(&str, &str); 2] = [("no", "No, change nothing"), ("yes", "Yes, go ahead")];

/// The label of the field holding the plan a question asks about.
pub const PLAN_LABEL: &str = "Plan";

/// The answer the question comes with. Gajim 2 draws a list-single as a
/// drop-down showing its first option, yet counts a required field
/// without a `<value>` as unanswered, so Complete stayed disabled on the
/// "no" it showed until the admin picked yes and then no again. "No"
/// changes nothing, so it is the safe answer to start from.
const PRESET_ANSWER: &str = ANSWERS[0].0;

/// What a question's form says above its fields; the plan itself is a
/// field, since Poezio never shows instructions.
const QUESTION_INSTRUCTIONS: &str = "Read the plan, then choose yes or no.";

/// The form asking to confirm `question`: the plan as a `plan` field
/// every client shows (what an update changes is in it, once), then a
/// required yes/no choice, `confirm`, with "no" chosen. Only the
/// answer is read back (see adhoc's read_answer), whatever a client
/// submits of the rest. `by_chat` is the chat line that asks the same
/// (hidden: for the chat copy of a client that cannot answer, and bots).
pub fn confirm_form(title: &str, question: &Question, by_chat: Option<&str>) -> Element {
    let mut form = form_element("form", title);
    form.append_child(text_element("instructions", QUESTION_INSTRUCTIONS));
    let mut plan = field_element(PLAN_FIELD, "text-multi", PLAN_LABEL);
    for line in question.text.lines() {
        plan.append_child(text_element("value", line));
    }
    form.append_child(plan);
    let mut field = field_element(CONFIRM_FIELD, "list-single", "Go ahead? (choose yes or no)");
    field.append_child(Element::bare("required", NS_DATA));
    field.append_child(text_element("value", PRESET_ANSWER));
    for (value, label) in ANSWERS {
        field.append_child(option_element(value, label));
    }
    form.append_child(field);
    // Why it asks, for bots: hidden, since the plan says it in words.
    let mut why = field_element(WHY_FIELD, "hidden", "Why this is asked");
    for reason in &question.why {
        why.append_child(text_element("value", reason.as_str()));
    }
    form.append_child(why);
    if let Some(line) = by_chat {
        let mut field = field_element(BY_CHAT_FIELD, "hidden", "The same asked in a chat");
        field.append_child(text_element("value", line));
        form.append_child(field);
    }
    form
}

/// The hidden field of a question's form holding the chat line that asks
/// the same question.
pub const BY_CHAT_FIELD: &str = "by_chat";

/// The field of a question's form that holds the plan.
pub const PLAN_FIELD: &str = "plan";

/// The hidden field of a question's form that says why it is asked
/// ([`crate::ops::confirm::Why`]), one value per reason.
pub const WHY_FIELD: &str = "why";

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The question "Remove:\n  x\nGo ahead?".
    pub(in crate::xmpp::forms) fn remove_x() -> Question {
        let mut proposal = crate::ops::confirm::Proposal::always_asked("Remove");
        proposal.step("x".into(), "x".into());
        match proposal.decide(&crate::ops::Consent::NotAsked) {
            Err(crate::ops::Response::Confirm(question)) => question,
            other => panic!("not a question: {other:?}"),
        }
    }

    #[test]
    fn the_question_is_its_plan_then_a_required_yes_or_no_with_no_chosen() {
        let form = confirm_form("Remove modules", &remove_x(), None);
        let fields: Vec<&Element> = form.children().filter(|c| c.is("field", NS_DATA)).collect();
        let plan: Vec<String> = fields[0].children().map(Element::text).collect();
        assert_eq!(fields[0].attr("var"), Some(PLAN_FIELD));
        assert_eq!(plan, ["Remove:", "  x", "Go ahead?"]);
        let field = fields[1];
        assert_eq!(field.attr("var"), Some(CONFIRM_FIELD));
        assert_eq!(field.attr("type"), Some("list-single"));
        assert!(field.has_child("required", NS_DATA));
        let chosen: Vec<String> = field
            .children()
            .filter(|c| c.is("value", NS_DATA))
            .map(Element::text)
            .collect();
        assert_eq!(chosen, ["no"], "the answer that changes nothing is chosen");
        let values: Vec<String> = field
            .children()
            .filter(|c| c.is("option", NS_DATA))
            .filter_map(|o| o.get_child("value", NS_DATA))
            .map(Element::text)
            .collect();
        assert_eq!(values, ["no", "yes"]);
        let why = fields[2];
        assert_eq!(
            (why.attr("var"), why.attr("type")),
            (Some(WHY_FIELD), Some("hidden"))
        );
        let reasons: Vec<String> = why.children().map(Element::text).collect();
        assert_eq!(reasons, ["always_asked"]);
    }
}
