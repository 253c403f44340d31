//! logserver benchmarks (being written).
fn main() {}
