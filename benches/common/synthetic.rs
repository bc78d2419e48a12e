//! A prosody-modules-like tree of any size, for benchmarks: a main file,
//! a README with front matter and a Compatibility table, a dependency on
//! the previous module, and a helper file in every tenth module. A
//! different `revision` changes every module's content.

use std::path::Path;

/// Writes `count` modules under `root`.
pub fn tree(root: &Path, count: usize, revision: &str) {
    for i in 0..count {
        let dir = root.join(format!("mod_synthetic_{i:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lua = format!("-- synthetic module {i}{revision}\n");
        if i > 0 {
            lua += &format!("module:depends(\"synthetic_{:04}\")\n", i - 1);
        }
        for line in 0..80 {
            lua += &format!("local value_{line} = module:get_option_number(\"synthetic_{i}_{line}\", {line});\n");
        }
        std::fs::write(dir.join(format!("mod_synthetic_{i:04}.lua")), lua).unwrap();
        let readme = format!(
            "---\nlabels:\n- 'Stage-Beta'\nsummary: 'Synthetic module {i}'\n---\n\nIntroduction\n============\n\n{}\n\nCompatibility\n=============\n\n  ----- -------\n  0.12  Works\n  0.11  Works\n  ----- -------\n",
            "Text of the description. ".repeat(40)
        );
        std::fs::write(dir.join("README.markdown"), readme).unwrap();
        if i % 10 == 0 {
            std::fs::write(dir.join("helper.lib.lua"), "return {}\n".repeat(50)).unwrap();
        }
    }
}
