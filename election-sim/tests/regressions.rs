//! Pinned regression tests: runs that once broke an invariant, kept so the bug stays fixed.
//! Each test names the invariant and the algorithm behaviour it caught.

use std::path::Path;

use election_core::Protocol;
use election_core::bully::Bully;
use election_sim::{Invariant, Plan, Sim, Spec};

fn assert_holds<P: Protocol>(seed: u64, plan_json: &str) {
    let plan: Plan = serde_json::from_str(plan_json).expect("pinned plan parses");
    let spec = Spec::new(P::NAME, 5, seed, plan);
    let out = Sim::<P>::new(spec, None)
        .expect("pinned plan is valid")
        .run();
    if let Some(v) = out.violation {
        panic!(
            "{v}\nreproduce: election sim run --algorithm {} --nodes 5 --seed {seed} --plan <the plan in this test as a .json file>",
            P::NAME
        );
    }
}

/// Bully livelock on a calm network (found by the property test, seed below). A Halt delayed
/// past the calm leaves a member halted outside the coordinator's `Up`; the coordinator's Check
/// re-elects. From then on, every election straddles the next heartbeat: a member that got Ready
/// polls the coordinator while the coordinator still waits for the other ReadyAcks, gets
/// `IAmThere { leader: false }`, calls an election and answers the next Check with NotNormal —
/// so the coordinator re-elects every heartbeat and the cluster never settles. (Members no
/// longer poll — they time the coordinator's Checks — but the run stays as a livelock check.)
#[test]
fn bully_member_polling_a_readying_coordinator_does_not_livelock() {
    assert_holds::<Bully>(
        4275269745448623196,
        r#"{
            "network": {"min_latency_us": 1000, "max_latency_us": 32896,
                        "loss": 0.2881188037460155, "duplicate": 0.07682986882797806},
            "faults": [
                {"at_us": 53251, "fault": "recover", "node": 0},
                {"at_us": 262815, "fault": "heal"},
                {"at_us": 834986, "fault": "recover", "node": 0}
            ]
        }"#,
    );
}

/// The issue-9 race, inside the synchronous model: node 3 halts 0..2 while 4 is down, 4 recovers
/// and halts everyone, and 3's Halt to 0 arrives after 4's. With the first version's rule node 0
/// obeys 3 last and joins 3's group while the others join 4's: Assertion 1 breaks at 341.5 ms.
/// The shipped scenario file reproduces it; the default rule must hold, the old one must be caught.
#[test]
fn racing_halts_break_assertion_1_only_under_the_old_rule() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bully-halt-race.toml");
    let plan = Plan::load(&path, 5).unwrap();
    let run = |halts: &str| {
        let mut spec = Spec::new(Bully::NAME, 5, 0, plan.clone());
        spec.options.insert("halts".into(), halts.into());
        let out = Sim::<Bully>::new(spec, None).unwrap().run();
        assert_eq!(out.stats.left_model_at, None, "the scenario is synchronous");
        out.violation
    };
    assert_eq!(run("authority"), None);
    let v = run("any-higher").expect("the old rule breaks Assertion 1");
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
    assert_eq!(v.time, 341_500, "{v}");
    assert!(
        v.detail
            .contains("n0:Reorganization/AwaitingReady coord=n3"),
        "{v}"
    );
}
