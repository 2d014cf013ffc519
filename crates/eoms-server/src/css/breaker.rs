//! A circuit breaker per outbound endpoint: each province's CSS (by URL), and each TMF621 hub
//! listener's callback ([`crate::tmf::deliver`]). Each message has its own retry backoff,
//! but when a province's CSS is down every ticket's next message fails on its own schedule: a
//! busy province queues hundreds of messages a minute, each tried, failed and re-queued — two
//! writes and a connection attempt apiece, against a system known to be down. After
//! [`FAILURES_TO_OPEN`] calls in a row fail to reach an endpoint (no connection, a timeout, an
//! answer that is not SOAP), its circuit opens: nothing is sent there for [`open_for`] (5 s,
//! doubling each time it opens again, at most 5 minutes), then one message goes as a probe. The
//! probe's success closes the circuit and delivery resumes at full pace; its failure opens it
//! again, for longer. A CSS that answers — even with a refusal — is up: refusals are the
//! message's own failure (its backoff, then the dead letters), not the endpoint's.
//!
//! Every endpoint has its own outbox channel, so an open circuit means its channel is not
//! claimed: held messages are neither touched nor attempted, their attempts (and the road to the
//! dead letters) do not grow during an outage, and the order per ticket is untouched. The state
//! is per node and in memory: a node that starts sends at once, and learns of an outage from its
//! own calls.

use chrono::TimeDelta;
use eoms_store::Timestamp;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Failed calls in a row that open an endpoint's circuit.
pub const FAILURES_TO_OPEN: u32 = 5;

/// How long a circuit stays open the `n`th time in a row it opens: 5 s doubling, at most 5 minutes.
pub fn open_for(n: u32) -> TimeDelta {
    TimeDelta::seconds((5i64 << n.saturating_sub(1).min(6)).min(300))
}

#[derive(Default)]
struct Endpoint {
    /// Failed calls in a row.
    failures: u32,
    /// Times in a row the circuit opened (reset when a call succeeds).
    opened: u32,
    /// While set, the circuit is open: no calls until then, then one probe.
    open_until: Option<Timestamp>,
    /// Open since (the first failure of the run that opened it).
    down_since: Option<Timestamp>,
    last_error: String,
}

/// Whether a message may go to an endpoint now.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// The circuit is closed: send.
    Send,
    /// The circuit was open and its wait is over: send one message, as a probe.
    Probe,
    /// The circuit is open: send nothing until then.
    Hold(Timestamp),
}

/// What a call's outcome changed, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Opened { until: Timestamp, failures: u32 },
    Closed { down_since: Option<Timestamp> },
}

/// An endpoint's state, for the admin page and the metrics.
#[derive(Debug, Clone)]
pub struct EndpointState {
    pub url: String,
    pub open_until: Option<Timestamp>,
    pub down_since: Option<Timestamp>,
    pub failures: u32,
    pub last_error: String,
}

#[derive(Default)]
pub struct Breakers(Mutex<BTreeMap<String, Endpoint>>);

impl Breakers {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Endpoint>) -> R) -> R {
        match self.0.lock() {
            Ok(mut m) => f(&mut m),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// What may be sent to `url` at `now`. Each endpoint has its own channel, claimed once per
    /// delivery pass, so a probe is one claim of one message.
    pub fn gate(&self, url: &str, now: Timestamp) -> Gate {
        self.with(|m| match m.get(url).and_then(|e| e.open_until) {
            None => Gate::Send,
            Some(until) if now < until => Gate::Hold(until),
            Some(_) => Gate::Probe,
        })
    }

    /// How many messages a delivery pass may claim for `url` at `now`: none while its circuit
    /// is open, one as a probe once the wait is over, else `full`.
    pub fn claim_limit(&self, url: &str, now: Timestamp, full: u32) -> Option<u32> {
        match self.gate(url, now) {
            Gate::Hold(_) => None,
            Gate::Probe => Some(1),
            Gate::Send => Some(full),
        }
    }

    /// Records a call's outcome: `Ok` when the endpoint answered as a CSS, `Err` when it could
    /// not be reached. Returns what changed.
    pub fn record(&self, url: &str, now: Timestamp, outcome: Result<(), &str>) -> Option<Change> {
        self.with(|m| {
            let e = m.entry(url.to_string()).or_default();
            match outcome {
                Ok(()) => {
                    let was_open = e.open_until.is_some();
                    let down_since = e.down_since;
                    *e = Endpoint::default();
                    was_open.then_some(Change::Closed { down_since })
                }
                Err(why) => {
                    e.failures += 1;
                    e.last_error = why.chars().take(300).collect();
                    if e.down_since.is_none() {
                        e.down_since = Some(now);
                    }
                    // A failed probe reopens at once; otherwise the run of failures must be long enough.
                    let reopen = e.open_until.is_some_and(|until| now >= until);
                    if (e.open_until.is_none() && e.failures >= FAILURES_TO_OPEN) || reopen {
                        e.opened += 1;
                        let until = now + open_for(e.opened);
                        e.open_until = Some(until);
                        return Some(Change::Opened { until, failures: e.failures });
                    }
                    None
                }
            }
        })
    }

    /// The endpoints that have failed lately (an open circuit has failures; a success clears
    /// both, so closed ones with no failures are left out).
    pub fn states(&self) -> Vec<EndpointState> {
        self.with(|m| {
            m.iter()
                .filter(|(_, e)| e.failures > 0)
                .map(|(url, e)| EndpointState {
                    url: url.clone(),
                    open_until: e.open_until,
                    down_since: e.down_since,
                    failures: e.failures,
                    last_error: e.last_error.clone(),
                })
                .collect()
        })
    }

    /// Whether `url`'s circuit is open (for the metrics).
    pub fn is_open(&self, url: &str) -> bool {
        self.with(|m| m.get(url).is_some_and(|e| e.open_until.is_some()))
    }
}

/// Logs a circuit's change (`system`: `css` or `tmf`).
pub fn log_change(system: &str, url: &str, change: Option<Change>) {
    match change {
        Some(Change::Opened { until, failures }) => crate::ops::log_event(
            "warn",
            system,
            &[
                ("circuit", "open"),
                ("endpoint", url),
                ("failures_in_a_row", &failures.to_string()),
                ("until", &until.to_rfc3339()),
            ],
        ),
        Some(Change::Closed { down_since }) => crate::ops::log_event(
            "info",
            system,
            &[
                ("circuit", "closed"),
                ("endpoint", url),
                ("down_since", &down_since.map(|t| t.to_rfc3339()).unwrap_or_default()),
            ],
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const URL: &str = "http://css.example/css/sd";

    #[test]
    fn a_run_of_failures_opens_the_circuit_a_probe_closes_it_and_a_failed_probe_waits_longer() {
        let b = Breakers::default();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
        for i in 1..FAILURES_TO_OPEN {
            assert_eq!(b.record(URL, t0, Err("连接失败")), None, "failure {i} of a run leaves it closed");
            assert_eq!(b.gate(URL, t0), Gate::Send);
        }
        // One success in between resets the run.
        assert_eq!(b.record(URL, t0, Ok(())), None);
        for _ in 1..FAILURES_TO_OPEN {
            b.record(URL, t0, Err("连接失败"));
        }
        let opened = b.record(URL, t0, Err("连接失败"));
        assert_eq!(opened, Some(Change::Opened { until: t0 + open_for(1), failures: FAILURES_TO_OPEN }));
        assert!(b.is_open(URL));
        assert_eq!(b.gate(URL, t0 + TimeDelta::seconds(4)), Gate::Hold(t0 + TimeDelta::seconds(5)));
        assert_eq!(b.claim_limit(URL, t0 + TimeDelta::seconds(4), 64), None, "nothing claimed while open");
        // Late calls that were already out when it opened do not extend the wait.
        assert_eq!(b.record(URL, t0 + TimeDelta::seconds(1), Err("超时")), None);
        // The wait over: a probe.
        let t1 = t0 + TimeDelta::seconds(5);
        assert_eq!(b.gate(URL, t1), Gate::Probe);
        assert_eq!(b.claim_limit(URL, t1, 64), Some(1), "a probe is one message");
        // The probe fails: open again, twice as long.
        assert_eq!(
            b.record(URL, t1, Err("连接失败")),
            Some(Change::Opened { until: t1 + TimeDelta::seconds(10), failures: FAILURES_TO_OPEN + 2 })
        );
        let t2 = t1 + TimeDelta::seconds(10);
        assert_eq!(b.gate(URL, t2), Gate::Probe);
        assert_eq!(b.record(URL, t2, Ok(())), Some(Change::Closed { down_since: Some(t0) }));
        assert_eq!(b.gate(URL, t2), Gate::Send);
        assert!(b.states().is_empty(), "a closed endpoint with no failures is not listed");
        // Another endpoint is not affected by this one.
        assert_eq!(b.gate("http://other/css/gd", t0), Gate::Send);
        assert_eq!(b.claim_limit("http://other/css/gd", t0, 64), Some(64));
    }

    #[test]
    fn the_wait_doubles_to_five_minutes() {
        let waits: Vec<i64> = (1..=9).map(|n| open_for(n).num_seconds()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
