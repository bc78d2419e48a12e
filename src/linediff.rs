//! Line differences between two texts: what an update changes in a
//! module's files, counted (lines added and removed) for its question and
//! shown (a unified diff) by `diff`. Myers' algorithm, bounded: both texts
//! come from outside (a repository's archive, files on disk), so past
//! [`MAX_EDITS`] differences the rest is taken as replaced whole, which
//! is still a true diff, only not the shortest. It imports nothing from
//! the crate.

/// Most edits searched for before the rest counts as replaced: the work
/// grows with the square of it, and module files differ by far fewer.
pub const MAX_EDITS: usize = 2_000;

/// One line of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The edit script turning `old` into `new`, line by line.
pub fn diff<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (middle_a, middle_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut script: Vec<Line> = a[..prefix].iter().map(|l| Line::Same(l)).collect();
    match myers(middle_a, middle_b) {
        Some(middle) => script.extend(middle),
        None => {
            script.extend(middle_a.iter().map(|l| Line::Removed(l)));
            script.extend(middle_b.iter().map(|l| Line::Added(l)));
        }
    }
    script.extend(a[a.len() - suffix..].iter().map(|l| Line::Same(l)));
    script
}

/// Lines (added, removed) in `script`.
pub fn counts(script: &[Line]) -> (usize, usize) {
    script
        .iter()
        .fold((0, 0), |(added, removed), line| match line {
            Line::Added(_) => (added + 1, removed),
            Line::Removed(_) => (added, removed + 1),
            Line::Same(_) => (added, removed),
        })
}

/// `script` as the hunks of a unified diff (`@@ -1,3 +1,4 @@` and the
/// lines), with `context` unchanged lines around each change.
pub fn unified(script: &[Line], context: usize) -> Vec<String> {
    let changed: Vec<usize> = (0..script.len())
        .filter(|&i| !matches!(script[i], Line::Same(_)))
        .collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < changed.len() {
        // One hunk: changes closer than two contexts apart go together.
        let start = changed[at].saturating_sub(context);
        let mut end = changed[at];
        while at < changed.len() && changed[at] <= end + 2 * context + 1 {
            end = changed[at];
            at += 1;
        }
        let end = (end + context + 1).min(script.len());
        // Line numbers before the hunk, on each side.
        let (mut old_line, mut new_line) = (1, 1);
        for line in &script[..start] {
            match line {
                Line::Same(_) => (old_line, new_line) = (old_line + 1, new_line + 1),
                Line::Removed(_) => old_line += 1,
                Line::Added(_) => new_line += 1,
            }
        }
        let hunk = &script[start..end];
        let old_count = hunk.iter().filter(|l| !matches!(l, Line::Added(_))).count();
        let new_count = hunk
            .iter()
            .filter(|l| !matches!(l, Line::Removed(_)))
            .count();
        // An empty side is numbered from the line before it, as diff does.
        let from = |line: usize, count: usize| if count == 0 { line - 1 } else { line };
        out.push(format!(
            "@@ -{},{old_count} +{},{new_count} @@",
            from(old_line, old_count),
            from(new_line, new_count)
        ));
        out.extend(hunk.iter().map(|line| match line {
            Line::Same(text) => format!(" {text}"),
            Line::Removed(text) => format!("-{text}"),
            Line::Added(text) => format!("+{text}"),
        }));
    }
    out
}

/// The shortest edit script of `a` into `b`, or `None` past
/// [`MAX_EDITS`]. Keeps the frontier of each step (`2d + 3` numbers for
/// step `d`) to walk back along.
fn myers<'a>(a: &[&'a str], b: &[&'a str]) -> Option<Vec<Line<'a>>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (a.len() + b.len()).min(MAX_EDITS);
    // v[k + offset]: the furthest x on diagonal k.
    let offset = max as isize + 1;
    let mut v = vec![0isize; 2 * max + 3];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let index = |k: isize| (k + offset) as usize;
    for d in 0..=max as isize {
        trace.push(v[index(-d - 1)..=index(d + 1)].to_vec());
        for k in (-d..=d).step_by(2) {
            let mut x = if k == -d || (k != d && v[index(k - 1)] < v[index(k + 1)]) {
                v[index(k + 1)]
            } else {
                v[index(k - 1)] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                (x, y) = (x + 1, y + 1);
            }
            v[index(k)] = x;
            if x >= n && y >= m {
                return Some(walk_back(a, b, &trace));
            }
        }
    }
    None
}

/// The script found by [`myers`], from the frontiers it kept.
fn walk_back<'a>(a: &[&'a str], b: &[&'a str], trace: &[Vec<isize>]) -> Vec<Line<'a>> {
    let (mut x, mut y) = (a.len() as isize, b.len() as isize);
    let mut script = Vec::new();
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        // `v` holds diagonals -d-1 ..= d+1.
        let at = |k: isize| v[(k + d + 1) as usize];
        let k = x - y;
        let previous_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let previous_x = at(previous_k);
        let previous_y = previous_x - previous_k;
        while x > previous_x && y > previous_y {
            script.push(Line::Same(a[x as usize - 1]));
            (x, y) = (x - 1, y - 1);
        }
        if d > 0 {
            if x == previous_x {
                script.push(Line::Added(b[y as usize - 1]));
            } else {
                script.push(Line::Removed(a[x as usize - 1]));
            }
            (x, y) = (previous_x, previous_y);
        }
    }
    script.reverse();
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `script` to get the new text back, and the old one.
    fn sides(script: &[Line]) -> (Vec<String>, Vec<String>) {
        let mut old = Vec::new();
        let mut new = Vec::new();
        for line in script {
            match line {
                Line::Same(t) => {
                    old.push(t.to_string());
                    new.push(t.to_string());
                }
                Line::Removed(t) => old.push(t.to_string()),
                Line::Added(t) => new.push(t.to_string()),
            }
        }
        (old, new)
    }

    #[test]
    fn the_script_rebuilds_both_sides_and_counts_what_changed() {
        let old = "a\nb\nc\nd\ne\nf\n";
        let new = "a\nc\nd\nx\ne\nf\ng\n";
        let script = diff(old, new);
        let (o, n) = sides(&script);
        assert_eq!(o.join("\n"), old.trim_end());
        assert_eq!(n.join("\n"), new.trim_end());
        assert_eq!(counts(&script), (2, 1));
        assert_eq!(
            unified(&script, 1),
            [
                "@@ -1,6 +1,7 @@".to_owned(),
                " a".into(),
                "-b".into(),
                " c".into(),
                " d".into(),
                "+x".into(),
                " e".into(),
                " f".into(),
                "+g".into(),
            ]
        );
        assert!(unified(&diff(old, old), 3).is_empty());
        assert_eq!(counts(&diff("", "one\ntwo\n")), (2, 0));
        assert_eq!(unified(&diff("", "one\n"), 3), ["@@ -0,0 +1,1 @@", "+one"]);
    }

    #[test]
    fn far_apart_changes_make_separate_hunks() {
        let old: String = (0..40).map(|i| format!("{i}\n")).collect();
        let new: String = (0..40)
            .map(|i| match i {
                5 => "five\n".to_owned(),
                30 => "thirty\n".to_owned(),
                i => format!("{i}\n"),
            })
            .collect();
        let hunks: Vec<String> = unified(&diff(&old, &new), 3)
            .into_iter()
            .filter(|l| l.starts_with("@@"))
            .collect();
        assert_eq!(hunks, ["@@ -3,7 +3,7 @@", "@@ -28,7 +28,7 @@"]);
    }

    #[test]
    fn past_the_edit_bound_the_rest_is_replaced_whole_and_still_true() {
        let old: String = (0..3 * MAX_EDITS).map(|i| format!("{i}\n")).collect();
        let new: String = (0..3 * MAX_EDITS)
            .map(|i| format!("{}\n", i * 7 + 1))
            .collect();
        let script = diff(&old, &new);
        let (o, n) = sides(&script);
        assert_eq!(o.join("\n"), old.trim_end());
        assert_eq!(n.join("\n"), new.trim_end());
    }
}
