//! The checkers catch broken variants: a Bully whose node 0 crowns itself without an election,
//! the first version's Halt rule (in the synchronous mode), and a ring claiming Assertion 1.

use election_core::bully::Bully;
use election_core::harness::{Mutant, Mutation};
use election_core::raft::Raft;
use election_core::ring::Ring;
use election_core::{NodeId, Properties, Protocol, Scope, State, Status};
use election_sim::{Invariant, Plan, RandomFaults, Sim, Spec, Violation};

/// Node 0 reports itself the `Normal` leader from boot on, without an election.
struct CrownsNode0;

impl Mutation<Bully> for CrownsNode0 {
    fn status(me: NodeId, status: Status) -> Status {
        if me != NodeId(0) || status.state == State::Down {
            return status;
        }
        Status {
            state: State::Normal,
            coordinator: Some(me),
            phase: "Usurper",
            ..status
        }
    }
}

type UsurpingBully = Mutant<Bully, CrownsNode0>;

/// Invariant: whenever the usurper is still up at the end of a run, the run reports a violation
/// (Assertion 1, when the run stays inside the synchronous model; liveness: it does not follow
/// the real leader; or stability, if it usurped after the check).
#[test]
fn a_bully_that_crowns_itself_without_an_election_is_caught() {
    let mut caught = 0;
    for seed in 0..30 {
        let spec = Spec::new("bully", 5, seed, RandomFaults::default().generate(seed, 5));
        let mut sim = Sim::<UsurpingBully>::new(spec.clone(), None).unwrap();
        let end = sim.end_time();
        match sim.run_until(end) {
            Err(v) => {
                eprintln!("caught: {v}");
                assert_eq!(v.seed, seed);
                assert!(
                    matches!(
                        v.invariant,
                        Invariant::Agreement
                            | Invariant::Liveness
                            | Invariant::Stability
                            | Invariant::Validity
                    ),
                    "seed {seed}: {v}"
                );
                // The real Bully passes the same run, so the violation is the usurper's doing.
                let honest = Sim::<Bully>::new(spec, None).unwrap().run();
                assert_eq!(honest.violation, None, "seed {seed}");
                caught += 1;
            }
            Ok(()) => assert_eq!(
                sim.status(0).state,
                State::Down,
                "seed {seed}: the usurper is up, yet nothing was reported"
            ),
        }
    }
    assert!(
        caught >= 15,
        "only {caught} of 30 runs had the usurper up to be caught"
    );
}

/// The first violation over `seeds` synchronous-mode seeds of `P` with `options`, as
/// `election sim check --synchronous` would find it.
fn first_synchronous_violation<P: Protocol>(
    options: &[(&str, &str)],
    nodes: u32,
    seeds: u64,
) -> Option<Violation> {
    (0..seeds).find_map(|seed| {
        let mut spec = Spec::new(P::NAME, nodes, seed, Plan::calm());
        spec.options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = spec.config::<P>().unwrap();
        spec.plan = RandomFaults::default().generate_synchronous(
            seed,
            nodes,
            config.timing,
            P::max_delay(&config),
        );
        let out = Sim::<P>::new(spec, None).unwrap().run();
        assert_eq!(out.stats.left_model_at, None, "seed {seed} left the model");
        out.violation
    })
}

/// Invariant: Assertion 1 at every instant of a synchronous run. The first version's Halt rule
/// (obey any higher node) breaks it when two coordinators' Halts race; the synchronous plan mode
/// must find that with a seed to reproduce, and the default rule must pass the same seeds.
#[test]
fn the_old_halt_rule_is_caught_by_the_synchronous_mode() {
    let v = first_synchronous_violation::<Bully>(&[("halts", "any-higher")], 5, 3_000)
        .expect("the old rule is caught within 3,000 synchronous seeds");
    eprintln!(
        "caught: {v}\nreproduce: election sim run --algorithm bully -o halts=any-higher \
         --synchronous --seed {}",
        v.seed
    );
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
    assert_eq!(
        first_synchronous_violation::<Bully>(&[], 5, v.seed + 1),
        None,
        "the default rule passes the same seeds"
    );
}

/// The ring as it would be if it claimed Assertion 1: same protocol, one more claim.
struct ClaimsAssertion1;

impl Mutation<Ring> for ClaimsAssertion1 {
    fn properties(declared: Properties) -> Properties {
        Properties {
            agreement: Some(Scope::Everyone),
            ..declared
        }
    }
}

type RingClaimingAssertion1 = Mutant<Ring, ClaimsAssertion1>;

/// Why the ring does not claim Assertion 1 (see `election_core::ring`): with the claim, the
/// synchronous mode finds an instant where two live Normal nodes follow different leaders. What
/// the ring does claim — one leader at a time, the highest wins — passes the same seeds.
#[test]
fn the_ring_keeps_one_leader_but_not_assertion_1() {
    let v = first_synchronous_violation::<RingClaimingAssertion1>(&[], 5, 2_000)
        .expect("Assertion 1 breaks for the ring within 2,000 synchronous seeds");
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
    assert_eq!(
        first_synchronous_violation::<Ring>(&[], 5, v.seed + 1),
        None,
        "the ring's own claims hold on the same seeds"
    );
}

/// Raft reporting every term as term 1: a leader cut off in a minority, which keeps leading
/// until its CheckQuorum, then overlaps with the majority's new leader "in the same term".
struct OneTerm;

impl Mutation<Raft> for OneTerm {
    fn status(_me: NodeId, status: Status) -> Status {
        Status {
            term: status.term.map(|_| 1),
            ..status
        }
    }
}

/// Raft's per-term checks run at every step: a variant that mixes up its terms is caught with a
/// seed — by Election Safety (two leaders of one term) or by Assertion 1 per term (a follower of
/// the old leader and the new leader in one term), whichever instant comes first — and real
/// Raft passes the same seeds.
#[test]
fn a_raft_that_mislabels_its_terms_breaks_election_safety() {
    let caught = (0..300).find_map(|seed| {
        let mut spec = Spec::new(Raft::NAME, 5, seed, Plan::calm());
        let config = spec.config::<Raft>().unwrap();
        spec.plan = RandomFaults::default()
            .respecting(&Raft::properties(&config))
            .generate(seed, 5);
        let out = Sim::<Mutant<Raft, OneTerm>>::new(spec.clone(), None)
            .unwrap()
            .run();
        out.violation.map(|v| (v, spec))
    });
    let (v, spec) = caught.expect("caught within 300 seeds");
    assert!(
        matches!(
            v.invariant,
            Invariant::ElectionSafety | Invariant::Agreement
        ),
        "{v}"
    );
    let honest = Sim::<Raft>::new(spec, None).unwrap().run();
    assert_eq!(honest.violation, None);
}
