//! Shared helpers for the benchmark targets (filled by the benchmark owners).
