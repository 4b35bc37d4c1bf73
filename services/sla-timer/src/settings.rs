use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[sla]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SlaSettings {
    /// How often the timer looks for deadlines that have come due. A breach is published at
    /// most this late.
    pub tick_ms: u64,
    /// Deadlines breached per transaction; the timer goes on at once while it finds full
    /// batches.
    pub batch_size: i64,
    /// A deadline is breached only this long after it fell due, so that work done in time
    /// but still on its way (a consumer catching up, a retry) is not escalated first.
    pub grace_secs: u64,
    /// After a start, how long the timer waits for the consumer of work events to read its
    /// backlog before it breaches anything.
    pub catch_up_secs: u64,
    /// Calendar files (`*.toml`) that override or add to the built-in calendars by name, so
    /// next year's holidays need no rebuild.
    pub calendars_dir: Option<PathBuf>,
    /// How often each instance looks at `calendars_dir` for changed calendars; a change
    /// moves every open deadline that depends on it.
    pub calendar_poll_ms: u64,
}

impl Default for SlaSettings {
    fn default() -> Self {
        Self {
            tick_ms: 250,
            batch_size: 100,
            grace_secs: 60,
            catch_up_secs: 60,
            calendars_dir: None,
            calendar_poll_ms: 30_000,
        }
    }
}
