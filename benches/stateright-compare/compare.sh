#!/usr/bin/env bash
# One run of the checker comparison in BENCHMARKS.md ("Exhaustive exploration"): stateright's BFS
# checker on our model of the ring and `election sim explore --algorithm ring`, then stateright's
# own published Paxos example, one after the other on this machine. Arguments go to the
# comparison binary (e.g. --nodes 3,4 --max-epoch 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

(cd "$root" && cargo build --release -p election)
(cd "$here" && cargo build --release)
# The Paxos example as published in the crate fetched for this project: built in a scratch copy,
# so that nothing is written into cargo's registry.
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/stateright-0.31.0 | head -n 1)
scratch=${TMPDIR:-/tmp}/stateright-0.31.0-examples
if [ ! -d "$scratch" ]; then cp -r "$src" "$scratch"; fi
(cd "$scratch" && cargo build --release --example paxos)

echo "== uptime: $(uptime)"
"$here/target/release/stateright-compare" --election "$root/target/release/election" "$@"
for clients in ${PAXOS_CLIENTS:-2 3}; do
  echo "== stateright examples/paxos.rs: paxos check $clients (threads = cores: $(nproc))"
  start=$(date +%s.%N)
  "$scratch/target/release/examples/paxos" check "$clients" | grep -E '^Done|Discovered|^Model'
  end=$(date +%s.%N)
  echo "wall seconds: $(echo "$end - $start" | bc -l)"
done
echo "== uptime: $(uptime)"
