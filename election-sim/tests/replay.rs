//! Determinism and replay for every algorithm: the same spec gives the same trace hash
//! twice, and a trace file replays from its header to the same hash.

use election_core::{Algorithm, Protocol};
use election_sim::cli::simulate;
use election_sim::trace::read_trace;
use election_sim::{RandomFaults, Spec, TraceSink};

fn traced_to_file(spec: Spec, path: &std::path::Path) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let out = simulate(
        spec,
        Some(TraceSink::new(Box::new(std::io::BufWriter::new(file)))),
    )
    .unwrap();
    assert!(out.violation.is_none(), "{:?}", out.violation);
    out.trace.unwrap().unwrap()
}

#[test]
fn every_algorithm_replays_to_the_same_trace_hash() {
    let dir = std::env::temp_dir();
    for algorithm in Algorithm::ALL {
        let seed = 20_261_121;
        let properties = election_core::with_protocol!(*algorithm, P => {
            P::properties(&election_core::ConfigOf::<P>::new(election_sim::DEFAULT_TIMING))
        });
        let spec = Spec::new(
            algorithm.name(),
            6,
            seed,
            RandomFaults::default()
                .respecting(&properties)
                .generate(seed, 6),
        );
        let path = dir.join(format!(
            "election-sim-replay-{algorithm}-{}.jsonl",
            std::process::id()
        ));
        let first = traced_to_file(spec.clone(), &path);
        let second = traced_to_file(spec.clone(), &path);
        assert_eq!(
            first, second,
            "{algorithm}: same seed, different trace hash"
        );

        let (header, recorded) = read_trace(&path).unwrap();
        assert_eq!(
            header, spec,
            "{algorithm}: the header must hold the exact spec"
        );
        assert_eq!(
            recorded, first,
            "{algorithm}: file hash differs from the hash while writing"
        );
        let replayed = simulate(header, Some(TraceSink::new(Box::new(std::io::sink()))))
            .unwrap()
            .trace
            .unwrap()
            .unwrap();
        assert_eq!(replayed, recorded, "{algorithm}: replay differs");
        std::fs::remove_file(&path).unwrap();
    }
}
