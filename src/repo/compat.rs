//! Does a module work with this Prosody? Matches the server's version
//! against the rows of a module's Compatibility table, as the
//! prosody-modules READMEs write them: `0.12`, `0.12.x`, `0.10 and later`,
//! `0.9 and earlier`, `trunk`.

use super::index::Compatibility;

/// The row that speaks for `server` (such as `0.12.3`), if any: an exact
/// major.minor row first, then a range. `trunk` rows speak only for trunk.
pub fn row_for<'a>(rows: &'a [Compatibility], server: &str) -> Option<&'a Compatibility> {
    let server = major_minor(server)?;
    let spec_of = |row: &Compatibility| {
        let text = row.prosody.to_lowercase();
        let version = major_minor(&text)?;
        Some(
            if text.contains("later")
                || text.contains("newer")
                || text.contains('+')
                || text.starts_with(">=")
            {
                Spec::AtLeast(version)
            } else if text.contains("earlier") || text.contains("older") || text.starts_with("<=") {
                Spec::AtMost(version)
            } else {
                Spec::Exactly(version)
            },
        )
    };
    let exact = rows
        .iter()
        .find(|row| spec_of(row) == Some(Spec::Exactly(server)));
    exact.or_else(|| {
        rows.iter().find(|row| match spec_of(row) {
            Some(Spec::AtLeast(v)) => server >= v,
            Some(Spec::AtMost(v)) => server <= v,
            _ => false,
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Exactly((u32, u32)),
    AtLeast((u32, u32)),
    AtMost((u32, u32)),
}

/// The first `N.M` in `text`.
fn major_minor(text: &str) -> Option<(u32, u32)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut parts = text[start..].split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(spec: &[(&str, Option<bool>)]) -> Vec<Compatibility> {
        spec.iter()
            .map(|(p, w)| Compatibility {
                prosody: p.to_string(),
                status: String::new(),
                works: *w,
            })
            .collect()
    }

    #[test]
    fn picks_the_row_that_speaks_for_the_server() {
        let table = rows(&[
            ("trunk", Some(true)),
            ("0.10 and later", Some(true)),
            ("0.9 and earlier", Some(false)),
        ]);
        assert_eq!(row_for(&table, "0.12.3").unwrap().prosody, "0.10 and later");
        assert_eq!(
            row_for(&table, "0.9.14").unwrap().prosody,
            "0.9 and earlier"
        );
        let table = rows(&[("0.12", Some(false)), ("0.11 and later", Some(true))]);
        assert_eq!(row_for(&table, "0.12.3").unwrap().works, Some(false));
        assert_eq!(row_for(&rows(&[("0.8", Some(true))]), "0.12.3"), None);
        assert_eq!(row_for(&rows(&[("0.12", Some(true))]), "trunk"), None);
        assert_eq!(
            row_for(&rows(&[("0.12.x", Some(true))]), "0.12.0")
                .unwrap()
                .works,
            Some(true)
        );
    }
}
