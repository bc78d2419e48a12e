//! A module that makes itself global (`module:set_global()`, such as
//! host_guard) is listed by no host; removing it must still unload it, or
//! Prosody keeps running code whose files are gone.

mod support;

use serde_json::json;
use support::{last, modman_with, Prosody, Repository};

fn loaded_globally(prosody: &Prosody, module: &str) -> bool {
    prosody
        .shell("module:list(\"*\")")
        .lines()
        .any(|l| l.trim() == module)
}

#[test]
fn removing_a_global_module_unloads_it_everywhere() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    let installed = admin.run(
        "install",
        json!({"modules": ["host_guard"], "enable": true, "hosts": ["localhost"], "confirm": true}),
    );
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    assert!(loaded_globally(&prosody, "host_guard"));

    let removed = admin.run("remove", json!({"modules": ["host_guard"]}));
    assert_eq!(last(&removed)["status"], "completed", "{removed}");
    assert!(!prosody.modules_dir().join("mod_host_guard").exists());
    assert!(
        !loaded_globally(&prosody, "host_guard"),
        "host_guard stays loaded: {}",
        prosody.shell("module:list(\"*\")")
    );
    assert!(!prosody
        .loaded_modules("localhost")
        .contains(&"host_guard".to_owned()));
}
