//! Times as people read them, the same in every result: in the server's
//! local time zone, to the second (`2026-11-24 16:37:49 CET`), never the
//! RFC 3339 stamps modman stores.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 UTC `times` in the server's local time zone, to the second:
/// `2026-11-24 16:37:49 CET`. The zone (with its summer time) comes from
/// the system's own `date`, which reads the zone database; if that fails,
/// the times are shown in UTC, labelled so.
pub(super) async fn local_times<'a>(times: impl Iterator<Item = &'a str>) -> Vec<String> {
    let parsed: Vec<Option<OffsetDateTime>> = times
        .map(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .collect();
    let stamps: String = parsed
        .iter()
        .map(|t| match t {
            Some(t) => format!("@{}\n", t.unix_timestamp()),
            None => "@0\n".to_owned(),
        })
        .collect();
    let local = match in_local_zone(&stamps).await {
        Ok(lines) if lines.len() == parsed.len() => Some(lines),
        Ok(lines) => {
            tracing::warn!(
                "date answered {} lines for {} times; showing UTC",
                lines.len(),
                parsed.len()
            );
            None
        }
        Err(e) => {
            tracing::warn!("cannot ask date for the local time zone ({e}); showing UTC");
            None
        }
    };
    parsed
        .iter()
        .enumerate()
        .map(|(i, t)| match (t, &local) {
            (None, _) => "unknown time".to_owned(),
            (Some(_), Some(local)) => local[i].clone(),
            (Some(t), None) => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        })
        .collect()
}

/// `date -f -` over `@UNIX` lines: one local time per line.
async fn in_local_zone(stamps: &str) -> std::io::Result<Vec<String>> {
    use tokio::io::AsyncWriteExt;
    let mut date = tokio::process::Command::new("date")
        .args(["-f", "-", "+%Y-%m-%d %H:%M:%S %Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = date
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    stdin.write_all(stamps.as_bytes()).await?;
    drop(stdin);
    let output = date.wait_with_output().await?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "date exited with {}",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}
