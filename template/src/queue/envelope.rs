//! A job as it is stored: the handler's input plus what the queue knows about it.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Names one job from enqueue to its end, across retries and redeliveries: the key that
/// makes a handler idempotent (e.g. stored with the effect it applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// Time-ordered, so ids sort roughly by enqueue time.
    pub(super) fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Which job a handler runs, and which run of it this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRun {
    pub id: JobId,
    /// 1 on the first run, one more after each failed run. A redelivery after a crash
    /// or a lost lease runs the same attempt again.
    pub attempt: u32,
}

/// The stored form of a job, as JSON in the stream, the delayed set and dead records.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Envelope<J> {
    pub id: JobId,
    /// Runs that ended in an error so far.
    pub failures: u32,
    /// The W3C `traceparent` of the span that queued the job: its runs join that trace.
    /// Absent with traces off, and in jobs queued by releases before traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    pub job: J,
}

impl<J> Envelope<J> {
    pub fn new(job: J) -> Self {
        Self {
            id: JobId::new(),
            failures: 0,
            trace: crate::telemetry::current_traceparent(),
            job,
        }
    }

    pub fn run(&self) -> JobRun {
        JobRun {
            id: self.id,
            attempt: self.failures + 1,
        }
    }
}

/// The part of an envelope that decodes whatever the job: a payload the current `Job`
/// type no longer reads can still be buried under its own id.
#[derive(Debug, Deserialize)]
pub(super) struct EnvelopeHeader {
    pub id: JobId,
    pub failures: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_uuids() {
        let id = JobId::new();
        let printed = id.to_string();
        assert_eq!(printed.len(), 36);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{printed}\"")
        );
        assert_eq!(printed.parse::<JobId>().unwrap(), id);
        assert!("not-an-id".parse::<JobId>().is_err());
    }

    #[test]
    fn an_envelope_without_a_trace_still_decodes() {
        let stored = r#"{"id":"0190b3f2-7c4e-7a39-8f3a-1c2d3e4f5a6b","failures":1,"job":7}"#;

        let envelope: Envelope<u32> = serde_json::from_str(stored).unwrap();

        assert_eq!(
            (envelope.failures, envelope.trace, envelope.job),
            (1, None, 7)
        );
    }

    #[test]
    fn the_first_run_is_attempt_one() {
        let envelope = Envelope::new(());
        assert_eq!(envelope.run().attempt, 1);
        assert_eq!(
            Envelope {
                failures: 2,
                ..envelope
            }
            .run()
            .attempt,
            3
        );
    }
}
