#!/usr/bin/env bash
# Soak run of relayd's property tests (not CI): every decoder of outside data (CometBFT events and RPC answers,
# NEAR answers, ICS-23 and NEAR proofs, configuration files, admin API requests) with many more cases than
# `cargo test` runs. A failing case is printed with its minimal input; keep it as a regression test beside the
# property.
#
#   benches/fuzz.sh            # 100000 cases per property
#   CASES=1000000 benches/fuzz.sh
# Debug builds on purpose: arithmetic overflow panics there, and an overflow is a bug the soak must find.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${CASES:-100000}"
# Failing cases are shrunk for at most this many steps before they are printed.
export PROPTEST_MAX_SHRINK_ITERS="${PROPTEST_MAX_SHRINK_ITERS:-4096}"
echo "PROPTEST_CASES=$PROPTEST_CASES"
start=$(date +%s)
cargo test -p relayd-config --test fuzz
cargo test -p relayd-actors --test fuzz
cargo test -p relayd --lib admin::request_fuzz
echo "fuzz soak: $PROPTEST_CASES cases per property, $(( $(date +%s) - start )) s"
