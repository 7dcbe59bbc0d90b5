//! The timings the binary under test uses by default, read back from its `--help`.

use std::path::Path;

use serde_json::{json, Value};

/// The default heartbeat and election timeouts (ms) as the binary under test states them in
/// its `--help` (`[default: 50ms]` under each option); null where it does not say.
pub(crate) fn default_timings(exe: &Path) -> [Value; 3] {
    let help = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    [
        "--heartbeat",
        "--election-timeout-min",
        "--election-timeout-max",
    ]
    .map(|flag| match parse_default_ms(&help, flag) {
        Some(v) if v.fract() == 0.0 => json!(v as u64),
        Some(v) => json!(v),
        None => Value::Null,
    })
}

/// The `[default: ...]` of `flag` in clap's long help, in milliseconds. The binary parses
/// its durations with humantime, so the same parser reads its defaults back.
fn parse_default_ms(help: &str, flag: &str) -> Option<f64> {
    let start = help.find(&format!("{flag} "))?;
    let rest = &help[start..];
    // The option's own block ends where the next option starts.
    let block = &rest[..rest[2..].find("\n      -").map_or(rest.len(), |i| i + 2)];
    let d = block.split("[default: ").nth(1)?.split(']').next()?.trim();
    let d = humantime::parse_duration(d).ok()?;
    Some(d.as_nanos() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::parse_default_ms;

    #[test]
    fn default_timings_from_clap_help() {
        let help = "Options:\n      --heartbeat <DURATION>\n          Interval between leader heartbeats\n          \n          [env: RAFT_ELECTOR_HEARTBEAT=]\n          [default: 50ms]\n\n      --election-timeout-min <DURATION>\n          Lower bound\n          [default: 0.1s]\n\n      --election-timeout-max <DURATION>\n          Upper bound; the lease is 3/4 of it\n\n      --log <FILTER>\n          [default: info]\n";
        assert_eq!(parse_default_ms(help, "--heartbeat"), Some(50.0));
        assert_eq!(
            parse_default_ms(help, "--election-timeout-min"),
            Some(100.0)
        );
        // No default of its own: the next option's must not be taken.
        assert_eq!(parse_default_ms(help, "--election-timeout-max"), None);
        assert_eq!(parse_default_ms(help, "--missing"), None);
    }
}
