//! The timing the scenario tests of the polling algorithms share (a 100 ms heartbeat, a 40 ms
//! timeout), so the deadlines their comments work out hold alike, and the clusters built with it.

use election_core::harness::Cluster;
use election_core::{Config, ConfigOf, MILLIS, Protocol, Time, Timing};

/// Period of polls and heartbeats.
pub const HEARTBEAT: Time = 100 * MILLIS;
/// How long a node waits for an answer.
pub const TIMEOUT: Time = 40 * MILLIS;
/// Both, as a protocol configuration takes them.
pub const TIMING: Timing = Timing {
    heartbeat: HEARTBEAT,
    timeout: TIMEOUT,
};

/// `n` nodes of `P` (ids `0..n`) at the shared timing with `P`'s default options.
#[allow(dead_code)] // not every test file that shares the timing uses default options
pub fn cluster<P: Protocol>(n: u32) -> Cluster<P> {
    Cluster::new(config::<P>(), n).expect("the shared timing is a valid configuration")
}

/// `n` nodes of `P` started at once with every message delivered and no timer fired, checked to
/// have settled under the highest node already at time 0 (the algorithms whose top node needs
/// to wait for nobody). The message counts are the caller's to check.
#[allow(dead_code)] // as above
pub fn booted_at_once<P: Protocol>(n: u32) -> Cluster<P> {
    let mut c = cluster::<P>(n);
    c.start_all();
    c.deliver_all();
    assert_eq!(c.now(), 0, "settling needed a timer");
    assert_eq!(c.check_one_leader(), Ok(n - 1));
    c
}

/// `P`'s configuration at the shared timing with its default options.
#[allow(dead_code)] // as above
pub fn config<P: Protocol>() -> ConfigOf<P> {
    Config::new(TIMING)
}

/// `n` nodes of `P` started together and settled (within the liveness bound) under the highest.
#[allow(dead_code)] // as above
pub fn settled<P: Protocol>(n: u32) -> Cluster<P> {
    let mut c = cluster::<P>(n);
    c.start_all();
    assert_eq!(c.settle(), Ok(n - 1));
    c
}

/// Splits a settled 5-node cluster into {0, 1} and {2, 3, 4} and checks that, within the
/// liveness bound, each side is one group under its own highest node.
#[allow(dead_code)] // as above
pub fn split_two_three<P: Protocol>(c: &mut Cluster<P>) {
    c.partition(&[&[0, 1], &[2, 3, 4]]);
    c.run_for(c.liveness_bound());
    assert_eq!(c.check_group(&[0, 1]), Ok(1), "{}", c.describe(&c.live()));
    assert_eq!(
        c.check_group(&[2, 3, 4]),
        Ok(4),
        "{}",
        c.describe(&c.live())
    );
}
