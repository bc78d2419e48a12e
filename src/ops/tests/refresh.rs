//! `refresh`: each repository's row says its outcome once, and a refusal
//! by its cause.

use super::*;

#[tokio::test]
async fn a_good_refresh_says_ok_once_and_a_refused_one_its_cause() {
    let host = Host::new().await;
    let good = row(&table(host.run("refresh", &[]).await), REPOSITORY);
    assert_eq!(
        (&*good["outcome"], &*good["result"], &*good["cause"]),
        ("ok", "", "")
    );

    // The repository now serves an index whose signature is not its key's.
    std::fs::write(host.root.join("repo/index.json.sig"), [0u8; 64]).unwrap();
    let refused = row(&table(host.run("refresh", &[]).await), REPOSITORY);
    assert_eq!(
        (&*refused["outcome"], &*refused["cause"]),
        ("failed", "signature")
    );
    assert_ne!(refused["result"], "", "{refused:?}");
    // The index accepted before stays in use.
    assert_eq!(refused["modules"], MODULES.len().to_string());
}
