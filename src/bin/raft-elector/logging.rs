//! Log set-up: text or JSON on stderr, every line inside the `peer{id, term}` span.
//!
//! The node records the current term on its span as it changes. tracing-subscriber's text
//! format appends a re-recorded field instead of replacing it (`term=3 term=4 term=5`), so the
//! text format uses [`ReplacingFields`], which keeps only the newest value of each field. The
//! JSON format replaces values by itself.

use std::fmt;

use tracing::span;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        filter: String,
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Text field formatting that replaces a re-recorded span field instead of repeating it.
#[derive(Debug, Default)]
pub struct ReplacingFields(DefaultFields);

fn key(token: &str) -> Option<&str> {
    token.split_once('=').map(|(k, _)| k)
}

impl<'w> FormatFields<'w> for ReplacingFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        self.0.format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        let mut new = String::new();
        self.0.format_fields(Writer::new(&mut new), fields)?;
        let replaced: Vec<&str> = new.split(' ').filter_map(key).collect();
        let mut kept: Vec<&str> = current
            .fields
            .split(' ')
            .filter(|t| !t.is_empty() && !key(t).is_some_and(|k| replaced.contains(&k)))
            .collect();
        kept.push(&new);
        current.fields = kept.join(" ");
        Ok(())
    }
}

/// Installs the global subscriber: `filter` in EnvFilter syntax, text or JSON on stderr.
pub fn init(filter: &str, format: LogFormat) -> Result<(), LoggingError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|source| LoggingError::Filter {
        filter: filter.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.fmt_fields(ReplacingFields::default()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
    Ok(())
}
