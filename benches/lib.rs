//! relayd's benchmarks live in `benches/`; this library target only anchors the package.
