//! Cost of loading a configuration and of the per-packet channel filter check on the relay hot path.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use relayd_config::Config;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/config")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

fn parse(c: &mut Criterion) {
    let adr = fixture("adr-002.toml");
    let full = fixture("cosmos-near.toml");
    c.bench_function("config/parse_adr_002", |b| {
        b.iter(|| Config::parse(black_box(&adr), Path::new("adr-002.toml")))
    });
    c.bench_function("config/parse_cosmos_near", |b| {
        b.iter(|| Config::parse(black_box(&full), Path::new("cosmos-near.toml")))
    });
}

fn packet_filter(c: &mut Criterion) {
    let config = Config::parse(&fixture("cosmos-near.toml"), Path::new("cosmos-near.toml"))
        .expect("valid fixture");
    let filter = &config.chains[0].packet_filter;
    c.bench_function("config/packet_filter_allows", |b| {
        b.iter(|| filter.allows(black_box("transfer"), black_box("channel-1234")))
    });
}

criterion_group!(benches, parse, packet_filter);
criterion_main!(benches);
