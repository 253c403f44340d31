//! The timing the scenario tests of the polling algorithms share (a 100 ms heartbeat, a 40 ms
//! timeout), so the deadlines their comments work out hold alike.

use election_core::{MILLIS, Time, Timing};

/// Period of polls and heartbeats.
pub const HEARTBEAT: Time = 100 * MILLIS;
/// How long a node waits for an answer.
pub const TIMEOUT: Time = 40 * MILLIS;
/// Both, as a protocol configuration takes them.
pub const TIMING: Timing = Timing {
    heartbeat: HEARTBEAT,
    timeout: TIMEOUT,
};
