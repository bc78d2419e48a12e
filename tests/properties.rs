//! Property tests for every parser of outside input: whatever arrives,
//! no panic, and what is accepted is safe (names are names, paths stay
//! inside, errors are one readable line).

use std::path::Path;

use modman::config::Config;
use modman::engine::managed_config::ManagedConfig;
use modman::ops::{self, Input, Value};
use modman::repo::index::{is_safe_relative_path, is_safe_url_path, is_valid_module_name, Index};
use modman::repo::{archive, metadata};
use modman::xmpp::chat::line::{parse_line, Line};
use modman::xmpp::command::CommandRequest;
use proptest::prelude::*;

/// The module or host names `input` holds for field `var`.
fn names(input: &Input, var: &str) -> Vec<String> {
    match input.value(var) {
        Some(Value::Modules(names) | Value::Hosts(names)) => names.clone(),
        Some(Value::Versioned(wanted)) => wanted.iter().map(|w| w.name.clone()).collect(),
        _ => Vec::new(),
    }
}

/// The shipped example, which parses.
const GOOD_CONFIG: &str = include_str!("../modman.example.toml");

proptest! {
    #[test]
    fn chat_lines_never_panic_and_accepted_input_is_checked(line in "\\PC{0,200}") {
        match parse_line(&line) {
            Ok(Line::Command { op, raw }) => {
                if let Ok(input) = Input::check(op.spec().params, raw) {
                    for var in ["modules", "hosts"] {
                        for name in names(&input, var) {
                            prop_assert!(!name.contains('/') && !name.contains(".."), "{name}");
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(reply) => prop_assert!(!reply.is_empty()),
        }
    }

    #[test]
    fn submitted_fields_never_panic_and_module_names_are_names(
        fields in proptest::collection::vec(("[a-z_A-Z]{0,12}", proptest::collection::vec("\\PC{0,40}", 0..6)), 0..6)
    ) {
        for op in ops::all() {
            let raw = fields.iter().map(|(k, v)| (k.as_str(), v.clone()));
            match Input::check(op.spec().params, raw) {
                Ok(input) => {
                    for name in names(&input, "modules") {
                        prop_assert!(is_valid_module_name(&name), "{name}");
                    }
                }
                Err(e) => prop_assert!(!e.text.is_empty() && !e.text.contains('\n')),
            }
        }
    }

    #[test]
    fn any_config_text_fails_in_one_line_or_parses(text in "\\PC{0,300}") {
        if let Err(e) = Config::parse(&text, Path::new("/etc/modman")) {
            prop_assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn jids_in_config_are_accepted_only_when_they_are_accounts(admin in "\\PC{0,40}") {
        let text = GOOD_CONFIG.replace("admin@example.org", &admin.replace(['"', '\\'], ""));
        if let Ok(config) = Config::parse(&text, Path::new("/etc/modman")) {
            prop_assert!(config.admins.iter().all(|a| a.node().is_some()));
        }
    }

    #[test]
    fn index_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Index::parse(&bytes);
    }

    #[test]
    fn index_entries_accepted_are_safe(name in "\\PC{0,20}", archive in "\\PC{0,40}") {
        let json = serde_json::json!({"schema": 3, "repository": "r", "serial": 1, "generated": "2026-11-01T00:00:00Z",
            "expires": "2026-12-01T00:00:00Z", "modules": [{
            "name": name, "version": "1", "summary": "", "labels": [], "stage": null, "description": "",
            "dependencies": [], "compatibility": [], "archive": archive, "size": 1,
            "sha256": "0".repeat(64), "files": []
        }]});
        let parsed = Index::parse(json.to_string().as_bytes());
        // The fixture itself is a valid index whenever its two fields are.
        prop_assert_eq!(parsed.is_ok(), is_valid_module_name(&name) && is_safe_url_path(&archive));
        if let Ok(index) = parsed {
            prop_assert!(is_valid_module_name(&index.modules[0].name));
            prop_assert!(is_safe_relative_path(&index.modules[0].archive));
            prop_assert!(!index.modules[0].archive.split('/').any(|p| p == ".."));
        }
    }

    #[test]
    fn readmes_and_lua_never_panic(text in "\\PC{0,400}") {
        let _ = metadata::parse_readme(&text);
        let _ = metadata::parse_readme(&format!("---\n{text}\n---\nbody"));
        for declared in metadata::depends(&format!("module:depends(\"{text}\")")) {
            prop_assert!(is_valid_module_name(&declared.name));
        }
        let _ = metadata::depends(&text);
        let _ = metadata::headers(&text);
        let _ = modman::repo::compat::from_readme(&format!("Compatibility\n=============\n\n{text}\n"));
        let _ = modman::repo::compat::range_of(&text);
    }

    #[test]
    fn archive_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = archive::read(&bytes, "x");
    }

    #[test]
    fn archive_entries_accepted_stay_inside(path in "[a-z_./\\\\-]{1,60}") {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(1);
        header.set_mode(0o644);
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        if let Ok(files) = archive::read(&bytes, "x") {
            for file in files {
                prop_assert!(is_safe_relative_path(&file.path), "{}", file.path);
                prop_assert!(path.starts_with("mod_x/"), "{path}");
            }
        }
    }

    #[test]
    fn managed_configs_read_back_what_they_wrote(text in "\\PC{0,200}") {
        if let Ok(config) = ManagedConfig::parse(&text) {
            let again = ManagedConfig::parse(&config.render(Path::new("/x"))).unwrap();
            prop_assert_eq!(again, config);
        }
    }

    #[test]
    fn command_elements_never_panic(node in "\\PC{0,30}", action in "\\PC{0,12}", session in "\\PC{0,30}") {
        let mut element = minidom::Element::bare("command", "http://jabber.org/protocol/commands");
        let attr = |name: &str| minidom::rxml::NcName::try_from(name).unwrap();
        element.set_attr(minidom::rxml::Namespace::NONE, attr("node"), node);
        element.set_attr(minidom::rxml::Namespace::NONE, attr("action"), action);
        element.set_attr(minidom::rxml::Namespace::NONE, attr("sessionid"), session);
        let _ = CommandRequest::try_from(&element);
    }

    #[test]
    fn stanzas_read_as_the_stream_reads_them_never_panic(
        kind in "(message|iq|presence)",
        kind_type in "(get|set|result|error|chat|groupchat|unavailable|)",
        name in "[a-z][a-z0-9_-]{0,12}",
        value in "\\PC{0,200}",
        text in "\\PC{0,200}",
    ) {
        use modman::xmpp::stream::{parser_options, stanza, Assembled, Assembler, Incoming, StanzaReader};
        // As a server writes them: well-formed, so `]]>` in text (which
        // XML forbids there) has its `>` escaped too.
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('\'', "&apos;")
        };
        let xml = format!(
            "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>\
             <{kind} type='{kind_type}' from='a@b/c' to='modman.b' id='{v}'><{name} xmlns='urn:x' a='{v}'>{t}</{name}>\
             <body>{t}</body><command xmlns='http://jabber.org/protocol/commands' node='{v}'/></{kind}>",
            v = escape(&value),
            t = escape(&text),
        );
        let mut reader = StanzaReader::with_options(xml.as_bytes(), parser_options());
        let mut stanzas = Assembler::default();
        // The stream header, which the connection reads before stanzas.
        prop_assert!(matches!(reader.read(), Ok(Some(_))));
        let mut read = 0;
        while let Ok(Some(event)) = reader.read() {
            if let Some(Assembled::Element(element)) = stanzas.feed(event) {
                read += 1;
                let typed = matches!(stanza(element), Incoming::Stanza(_) | Incoming::Invalid { .. });
                prop_assert!(typed, "a stanza read as neither a stanza nor an invalid one");
            }
        }
        prop_assert_eq!(read, 1);
    }
}
