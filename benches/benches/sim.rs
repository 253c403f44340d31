//! sim benchmarks (being written).
fn main() {}
