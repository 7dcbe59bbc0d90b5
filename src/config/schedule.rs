//! The schedule mode's configuration (`--job NAME=CRON`, `--job-url NAME=URL` and the
//! policies), checked at start-up: a bad cron expression, a URL for no job or a job without a
//! URL stop the peer with a clear error.

use std::str::FromStr;
use std::time::Duration;

use crate::ledger;

/// What the new leader does with slots whose time passed while nobody ran them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Every slot within the deadline runs, oldest first.
    All,
    /// Only the latest runs; the others are recorded as missed (Kubernetes CronJob's way).
    Latest,
    /// None runs; all are recorded as missed.
    None,
}

/// What the leader does with a slot claimed but never reported (its runner died).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLost {
    /// Recorded as lost, never run again: at most once.
    Skip,
    /// Run again with a new token (within the deadline): at least once, fenced by the token.
    Retry,
}

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub schedule: cron::Schedule,
    /// Where the leader `POST`s each run (its own pod's application).
    pub url: String,
}

/// Everything the schedule mode needs; no jobs means the mode is off.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub jobs: Vec<JobSpec>,
    /// How long a run's request may take; also how long a claimed slot may go unreported
    /// before it is judged lost (plus a margin).
    pub timeout: Duration,
    pub catch_up: CatchUp,
    /// Slots older than this are never run: recorded as missed.
    pub deadline: Duration,
    pub on_lost: OnLost,
}

impl Default for Schedules {
    fn default() -> Self {
        Schedules {
            jobs: Vec::new(),
            timeout: Duration::from_secs(60),
            catch_up: CatchUp::Latest,
            deadline: Duration::from_secs(3600),
            on_lost: OnLost::Skip,
        }
    }
}

/// Why the schedule configuration is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("malformed --job {0:?}: expected NAME=CRON, e.g. mail=\"0 */5 * * * *\"")]
    NoEquals(String),
    #[error("--job {name:?}: {error}")]
    BadName {
        name: String,
        error: ledger::KeyError,
    },
    #[error("--job {name}={expr:?} is no cron expression with seconds (sec min hour day-of-month month day-of-week [year], e.g. \"0 */5 * * * *\"): {error}")]
    BadCron {
        name: String,
        expr: String,
        error: String,
    },
    #[error("job {0:?} is given twice in --job")]
    Twice(String),
    #[error(
        "malformed --job-url {0:?}: expected NAME=URL, e.g. mail=http://127.0.0.1:8080/jobs/mail"
    )]
    UrlNoEquals(String),
    #[error("--job-url {name}={url:?}: {why}")]
    BadUrl {
        name: String,
        url: String,
        why: String,
    },
    #[error("--job-url names job {0:?}, which no --job defines")]
    UnknownJob(String),
    #[error("job {0:?} has no --job-url: the leader would have nothing to call")]
    NoUrl(String),
    #[error("--job-deadline must be at least 1s (got {0:?})")]
    ShortDeadline(Duration),
}

/// Checks and joins `--job` and `--job-url` values.
pub fn parse_jobs(jobs: &[String], urls: &[String]) -> Result<Vec<JobSpec>, ScheduleError> {
    let mut specs: Vec<JobSpec> = Vec::new();
    for entry in jobs {
        let (name, expr) = entry
            .split_once('=')
            .ok_or_else(|| ScheduleError::NoEquals(entry.clone()))?;
        let name = name.trim().to_string();
        ledger::check_key("job name", &name).map_err(|error| ScheduleError::BadName {
            name: name.clone(),
            error,
        })?;
        let schedule =
            cron::Schedule::from_str(expr.trim()).map_err(|e| ScheduleError::BadCron {
                name: name.clone(),
                expr: expr.to_string(),
                // The parser's message echoes the expression with a caret under the
                // mistake on lines of their own; its last line says what is wrong.
                error: e
                    .to_string()
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("invalid")
                    .trim()
                    .to_string(),
            })?;
        if specs.iter().any(|s| s.name == name) {
            return Err(ScheduleError::Twice(name));
        }
        specs.push(JobSpec {
            name,
            schedule,
            url: String::new(),
        });
    }
    for entry in urls {
        let (name, url) = entry
            .split_once('=')
            .ok_or_else(|| ScheduleError::UrlNoEquals(entry.clone()))?;
        let (name, url) = (name.trim(), url.trim());
        let bad = |why: &str| ScheduleError::BadUrl {
            name: name.to_string(),
            url: url.to_string(),
            why: why.to_string(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(bad("use an http:// or https:// URL"));
        }
        let spec = specs
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| ScheduleError::UnknownJob(name.to_string()))?;
        spec.url = url.to_string();
    }
    if let Some(s) = specs.iter().find(|s| s.url.is_empty()) {
        return Err(ScheduleError::NoUrl(s.name.clone()));
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn jobs_and_urls_pair_up_and_every_mistake_is_named() {
        let ok = parse_jobs(
            &s(&["mail=*/5 * * * * *", "report = 0 0 6 * * Mon-Fri"]),
            &s(&[
                "mail=http://127.0.0.1:8080/jobs/mail",
                "report=http://127.0.0.1:8080/r",
            ]),
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].name, "report");
        let err = |jobs: &[&str], urls: &[&str]| {
            parse_jobs(&s(jobs), &s(urls))
                .expect_err("invalid")
                .to_string()
        };
        assert!(err(&["mail"], &[]).contains("NAME=CRON"));
        assert!(err(&["mail=every minute"], &[]).contains("no cron expression"));
        assert!(err(&["=* * * * * *"], &[]).contains("empty"));
        assert!(err(&["m=* * * * * *", "m=0 * * * * *"], &[]).contains("twice"));
        assert!(err(&["m=* * * * * *"], &["x=http://a/b"]).contains("no --job defines"));
        assert!(err(&["m=* * * * * *"], &[]).contains("no --job-url"));
        assert!(err(&["m=* * * * * *"], &["m=ftp://a/b"]).contains("http://"));
        assert!(err(&["m=* * * * * *"], &["m=not a url"]).contains("--job-url m="));
    }
}
