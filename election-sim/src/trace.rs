//! JSON Lines traces: a header line describing the run, then one line per event. The trace hash
//! (FNV-1a, 64 bit, over every byte of the file) identifies a run; `replay` recomputes it.

use std::io::{self, BufRead, Write};
use std::path::Path;

use std::collections::BTreeMap;

use election_core::{Algorithm, ConfigError, ConfigOf, Protocol, Time, Timing, validated};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// Everything a run is a function of; the first line of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Version of the simulator that wrote the trace.
    pub version: String,
    /// The algorithm (its `Protocol::NAME`).
    pub algorithm: String,
    /// Nodes at boot (ids `0..nodes`).
    pub nodes: u32,
    /// Master seed of every random draw.
    pub seed: u64,
    /// The algorithm's timing knobs.
    pub timing: Timing,
    /// The algorithm's options by name (`sticky = "true"`); left out when all are defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Network and faults.
    pub plan: Plan,
    /// For a counterexample of `sim explore`: its path, which `replay` re-runs through the
    /// explorer instead of the simulator (the plan is then unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore: Option<crate::explore::Explored>,
}

/// Timing used when none is given: 50 ms heartbeats, 20 ms reply timeout (so a 10 ms one-way
/// delay bound), against a default network of 1–5 ms.
pub const DEFAULT_TIMING: Timing = Timing {
    heartbeat: 50_000,
    timeout: 20_000,
};

impl Spec {
    /// A spec for `algorithm` with this crate's version and [`DEFAULT_TIMING`].
    pub fn new(algorithm: &str, nodes: u32, seed: u64, plan: Plan) -> Self {
        Spec {
            version: env!("CARGO_PKG_VERSION").to_string(),
            algorithm: algorithm.to_string(),
            nodes,
            seed,
            timing: DEFAULT_TIMING,
            options: BTreeMap::new(),
            plan,
            explore: None,
        }
    }

    /// The algorithm as one of the built-in ones of `election-core`.
    pub fn algorithm(&self) -> Result<Algorithm, election_core::UnknownAlgorithm> {
        self.algorithm.parse()
    }

    /// The validated configuration of protocol `P` this spec describes: its timing and options.
    pub fn config<P: Protocol>(&self) -> Result<ConfigOf<P>, ConfigError> {
        let pairs: Vec<(String, String)> = self
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        validated::<P>(ConfigOf::<P>::new(self.timing).with_options(P::NAME, &pairs)?)
    }
}

/// 64-bit FNV-1a, a tiny stable hash: the same bytes give the same hash on every platform and
/// Rust version (unlike `DefaultHasher`).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Adds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// So that any `Hash` value can be hashed stably (the explorer names messages and timers so).
impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        Fnv::write(self, bytes);
    }

    fn finish(&self) -> u64 {
        Fnv::finish(self)
    }
}

/// Where trace lines go: a writer (possibly `io::sink()`), hashed on the way.
pub struct TraceSink {
    out: Box<dyn Write>,
    hash: Fnv,
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl TraceSink {
    /// Writes to `out` (wrap files in a `BufWriter`).
    pub fn new(out: Box<dyn Write>) -> Self {
        TraceSink {
            out,
            hash: Fnv::default(),
            line: Vec::with_capacity(256),
            error: None,
        }
    }

    /// Appends one line holding `value`.
    pub(crate) fn line(&mut self, value: &impl Serialize) {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).expect("trace values serialize");
        self.line.push(b'\n');
        self.hash.write(&self.line);
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(&self.line) {
                self.error = Some(e);
            }
        }
    }

    /// Flushes and returns the hash of everything written, or the first write error.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.hash.finish())
    }
}

/// One trace line after the header.
#[derive(Serialize)]
pub(crate) struct Line<'a, M: Serialize, T: Serialize> {
    /// Virtual time, microseconds.
    pub t: Time,
    /// What happened.
    #[serde(flatten)]
    pub ev: Ev<'a, M, T>,
}

/// The events a trace records.
#[derive(Serialize)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub(crate) enum Ev<'a, M: Serialize, T: Serialize> {
    Start {
        node: u32,
    },
    Send {
        /// The message's number in send order; a duplicate's deliveries share it.
        id: u64,
        from: u32,
        to: u32,
        kind: &'static str,
        msg: &'a M,
    },
    Duplicate {
        /// The message's number in send order; a duplicate's deliveries share it.
        id: u64,
        from: u32,
        to: u32,
        kind: &'static str,
    },
    Deliver {
        /// The message's number in send order; a duplicate's deliveries share it.
        id: u64,
        from: u32,
        to: u32,
        kind: &'static str,
    },
    Drop {
        /// The message's number in send order; a duplicate's deliveries share it.
        id: u64,
        from: u32,
        to: u32,
        kind: &'static str,
        reason: &'static str,
    },
    Timer {
        node: u32,
        kind: &'static str,
        timer: &'a T,
    },
    Persist {
        node: u32,
        bytes: usize,
    },
    Status {
        node: u32,
        status: &'a election_core::Status,
    },
    Fault {
        fault: &'a crate::plan::Fault,
    },
    Calm,
    Settled {
        leader: Option<u32>,
    },
    Violation {
        violation: &'a crate::check::Violation,
    },
    End,
}

/// The hash of a trace file and the spec in its first line.
pub fn read_trace(path: &Path) -> Result<(Spec, u64), String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open trace {shown}: {e}"))?;
    let mut reader = io::BufReader::new(file);
    let mut header = String::new();
    reader
        .read_line(&mut header)
        .map_err(|e| format!("cannot read trace {shown}: {e}"))?;
    let spec: Spec = serde_json::from_str(&header)
        .map_err(|e| format!("trace {shown} line 1 is not a simulator header: {e}"))?;
    let mut hash = Fnv::default();
    hash.write(header.as_bytes());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read trace {shown}: {e}"))?;
        if n == 0 {
            break;
        }
        hash.write(&buf);
    }
    Ok((spec, hash.finish()))
}
