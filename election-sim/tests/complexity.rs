//! The complexity table's theory column counts what its measured column counts: for every
//! built-in algorithm that claims a bound, the simulator's count equals the module's formula in
//! each scenario (or, for a bound marked "at least" or "at most", is on its side of it), so a change to an
//! algorithm's message pattern must update its derivation.

use election_core::{Algorithm, Protocol, with_protocol};
use election_sim::cli::complexity_row;

#[test]
fn measured_messages_equal_each_algorithms_derivation() {
    for &algorithm in Algorithm::ALL {
        for n in [4u32, 8, 16] {
            let measured = complexity_row(algorithm, n, 2).unwrap();
            let theory = with_protocol!(algorithm, P => P::message_bounds(u64::from(n)));
            for (scenario, cell, bound) in [
                ("boot", measured[0], theory.boot),
                ("best", measured[1], theory.best),
                ("worst", measured[2], theory.worst),
            ] {
                if let Some(bound) = bound {
                    assert!(
                        bound.holds(cell),
                        "{algorithm} n={n} {scenario}: measured {cell}, theory {} = {}",
                        bound.what,
                        bound.shown()
                    );
                }
            }
        }
    }
}
