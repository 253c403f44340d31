//! The `election` command.
fn main() {}
