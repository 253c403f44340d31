//! The example protocol through every driver a user gets: the hand-driven harness, the
//! simulator with its checkers (including a broken claim it must catch), and the `sim` command
//! line of the example's own binary.

use std::process::Command;

use election_core::harness::{Cluster, Mutant, Mutation};
use election_core::{MILLIS, Properties, Protocol, Scope, Timing};
use election_sim::{Invariant, RandomFaults, Sim, Spec};
use highest_heard::{HighestHeard, HighestHeardConfig};

const TIMING: Timing = Timing {
    heartbeat: 50 * MILLIS,
    timeout: 20 * MILLIS,
};

#[test]
fn the_harness_elects_the_highest_and_forgets_a_crashed_leader() {
    let config = HighestHeardConfig::new(TIMING);
    let bound = HighestHeard::liveness_bound(&config, 4);
    let mut c = Cluster::<HighestHeard>::new(config, 4).unwrap();
    c.start_all();
    c.run_for(bound);
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    c.crash(3);
    c.run_for(bound);
    assert_eq!(c.check_one_leader(), Ok(2), "{}", c.describe(&c.live()));
}

/// Invariant: what the protocol declares — liveness and validity (the highest live node leads
/// once the network is calm) — holds over random fault plans.
#[test]
fn the_simulator_checks_what_it_declares_over_random_faults() {
    for seed in 0..100 {
        let spec = Spec::new(
            HighestHeard::NAME,
            5,
            seed,
            RandomFaults::default().generate(seed, 5),
        );
        let out = Sim::<HighestHeard>::new(spec, None).unwrap().run();
        assert_eq!(out.violation, None, "seed {seed}");
    }
}

/// The protocol as it would be if it claimed Garcia-Molina's Assertion 1.
struct ClaimsAssertion1;

impl Mutation<HighestHeard> for ClaimsAssertion1 {
    fn properties(declared: Properties) -> Properties {
        Properties {
            agreement: Some(Scope::Everyone),
            ..declared
        }
    }
}

/// Why it does not claim Assertion 1: nodes learn of a crash at different heartbeats, so the
/// synchronous mode finds an instant where two nodes follow different leaders.
#[test]
fn a_claim_it_cannot_keep_is_caught() {
    let caught = (0..500).find_map(|seed| {
        let mut spec = Spec::new(HighestHeard::NAME, 5, seed, election_sim::Plan::calm());
        spec.plan = RandomFaults::default().generate_synchronous(
            seed,
            5,
            spec.timing,
            spec.timing.max_delay(),
        );
        Sim::<Mutant<HighestHeard, ClaimsAssertion1>>::new(spec, None)
            .unwrap()
            .run()
            .violation
    });
    let v = caught.expect("caught within 500 synchronous seeds");
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
}

/// The example's own binary runs the simulator's commands for its protocol, and only for it.
#[test]
fn its_binary_has_the_simulators_command_line() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_highest-heard"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["sim", "check", "--seeds", "50", "-o", "expiry=2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("of highest-heard with 5 nodes, all invariants held"),
        "{stdout}"
    );
    let out = run(&["sim", "run", "-o", "expiry=0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("expiry"),
        "{stderr}"
    );
    let out = run(&["sim", "run", "--algorithm", "bully"]);
    assert!(!out.status.success());
}
