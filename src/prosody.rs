//! Facts about Prosody 0.12 that more than one part of modman relies on.

/// Where Prosody looks for module `name` inside one plugin directory, in
/// its own order (util/pluginloader.lua). The LuaRocks layouts under
/// `share/lua/5.4/`, which only `prosodyctl install` writes, are left out.
pub fn module_file_candidates(name: &str) -> [String; 4] {
    [
        format!("mod_{name}/{name}/mod_{name}.lua"),
        format!("mod_{name}/mod_{name}.lua"),
        format!("{name}/mod_{name}.lua"),
        format!("mod_{name}.lua"),
    ]
}

/// Whether `dir` holds module `name` in a layout Prosody loads.
pub fn has_module(dir: &std::path::Path, name: &str) -> bool {
    module_file_candidates(name)
        .iter()
        .any(|c| dir.join(c).is_file())
}
