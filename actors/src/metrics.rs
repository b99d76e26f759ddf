//! relayd's Prometheus metrics. The families are registered in a `Registry` the host passes in (never a global),
//! so an embedding host decides where they are exposed and two relayd instances in one process do not collide.
//! Actors record what only they see (transactions, reconnects); values that are a view of stored state
//! (packets by state, backlog, balances, expiry) are set by whoever serves the registry, right before a scrape.

use std::sync::Arc;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Why the metric families could not be registered.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Every relayd metric family. Cheap to clone; clones share the families.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The families, public so the admin server can set scrape-time views.
pub struct Families {
    /// `relayd_packets{chain,channel,state}`: lifecycle records by current state.
    pub packets: IntGaugeVec,
    /// `relayd_relay_latency_seconds{chain,channel}`: from detection to acknowledgement on the source.
    pub relay_latency_seconds: HistogramVec,
    /// `relayd_txs_submitted_total{chain}`.
    pub txs_submitted_total: IntCounterVec,
    /// `relayd_txs_failed_total{chain}`.
    pub txs_failed_total: IntCounterVec,
    /// `relayd_txs_confirmed_total{chain}`.
    pub txs_confirmed_total: IntCounterVec,
    /// `relayd_tx_messages{chain}`: messages per confirmed transaction.
    pub tx_messages: HistogramVec,
    /// `relayd_tx_gas_used_total{chain}`.
    pub tx_gas_used_total: IntCounterVec,
    /// `relayd_rpc_errors_total{chain}`.
    pub rpc_errors_total: IntCounterVec,
    /// `relayd_rpc_request_duration_seconds{chain}`.
    pub rpc_request_duration_seconds: HistogramVec,
    /// `relayd_websocket_reconnects_total{chain}`.
    pub websocket_reconnects_total: IntCounterVec,
    /// `relayd_actor_restarts_total{chain,kind}`.
    pub actor_restarts_total: IntCounterVec,
    /// `relayd_actor_mailbox_depth{chain,kind}`: requests sent to actors of a kind and not answered yet.
    pub actor_mailbox_depth: IntGaugeVec,
    /// `relayd_backlog_packets{chain,channel}`: unfinished packets (with records, or waiting in the intake log).
    pub backlog_packets: IntGaugeVec,
    /// `relayd_backlog_oldest_sequence{chain,channel}`: the lowest unfinished sequence (0 when none).
    pub backlog_oldest_sequence: IntGaugeVec,
    /// `relayd_client_expiry_seconds{chain,client}`: seconds until the client's trusting period runs out.
    pub client_expiry_seconds: IntGaugeVec,
    /// `relayd_misbehaviour_submitted_total{chain,client}`: misbehaviour evidence submitted against a client
    /// hosted on `chain`.
    pub misbehaviour_submitted_total: IntCounterVec,
    /// `relayd_wallet_balance{chain,denom,key}`: each signing account's balance, in the denom's base unit.
    pub wallet_balance: IntGaugeVec,
    /// `relayd_wallet_low{chain,key}`: 1 while the signing account's balance is below the chain's `min_balance`.
    pub wallet_low: IntGaugeVec,
    /// `relayd_clear_operations_total{result}`.
    pub clear_operations_total: IntCounterVec,
    /// `relayd_packets_cleared_total{chain,channel}`.
    pub packets_cleared_total: IntCounterVec,
    /// `relayd_packets_skipped_total{reason}`: packets not relayed by policy (ICS-20 caps).
    pub packets_skipped_total: IntCounterVec,
    /// `relayd_lifecycle_events_total`: lifecycle changes seen.
    pub lifecycle_events_total: IntCounter,
    /// `relayd_chain_height{chain}`: the latest height the coordinator saw.
    pub chain_height: IntGaugeVec,
    /// `relayd_rpc_endpoint_up{chain,endpoint}`: 1 while the RPC endpoint is healthy.
    pub rpc_endpoint_up: IntGaugeVec,
    /// `relayd_rpc_endpoint_quarantined{chain,endpoint}`: 1 while the endpoint is quarantined.
    pub rpc_endpoint_quarantined: IntGaugeVec,
    /// `relayd_rpc_endpoint_current{chain,endpoint}`: 1 for the endpoint reads and the subscription use.
    pub rpc_endpoint_current: IntGaugeVec,
    /// `relayd_rpc_endpoint_height{chain,endpoint}`: the latest height the endpoint reported.
    pub rpc_endpoint_height: IntGaugeVec,
    /// `relayd_packet_builders`: live packet builders.
    pub packet_builders: IntGauge,
    /// `relayd_packet_builders_waiting`: packets waiting for a builder slot (the window is full).
    pub packet_builders_waiting: IntGauge,
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, MetricsError> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> Result<HistogramVec, MetricsError> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

/// One exported family: its name and the labels its series carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyDesc {
    /// The full name, e.g. `relayd_packets`.
    pub name: String,
    /// Label names, e.g. `["chain", "channel", "state"]`.
    pub labels: Vec<String>,
}

impl Families {
    fn collectors(&self) -> [&dyn prometheus::core::Collector; 27] {
        [
            &self.packets,
            &self.relay_latency_seconds,
            &self.txs_submitted_total,
            &self.txs_failed_total,
            &self.txs_confirmed_total,
            &self.tx_messages,
            &self.tx_gas_used_total,
            &self.rpc_errors_total,
            &self.rpc_request_duration_seconds,
            &self.websocket_reconnects_total,
            &self.actor_restarts_total,
            &self.actor_mailbox_depth,
            &self.backlog_packets,
            &self.backlog_oldest_sequence,
            &self.client_expiry_seconds,
            &self.misbehaviour_submitted_total,
            &self.wallet_balance,
            &self.wallet_low,
            &self.clear_operations_total,
            &self.packets_cleared_total,
            &self.packets_skipped_total,
            &self.lifecycle_events_total,
            &self.chain_height,
            &self.rpc_endpoint_up,
            &self.rpc_endpoint_quarantined,
            &self.rpc_endpoint_current,
            &self.rpc_endpoint_height,
        ]
    }
}

impl Metrics {
    /// Every family relayd exports, with its labels, whether or not it has series yet (a scrape lists a labelled
    /// family only once it has one); dashboards and alert rules are checked against this.
    pub fn describe(&self) -> Vec<FamilyDesc> {
        let mut out: Vec<FamilyDesc> = self
            .inner
            .collectors()
            .iter()
            .chain([
                &(&self.inner.packet_builders as &dyn prometheus::core::Collector),
                &(&self.inner.packet_builders_waiting as &dyn prometheus::core::Collector),
            ])
            .flat_map(|c| c.desc())
            .map(|d| FamilyDesc {
                name: d.fq_name.clone(),
                labels: d.variable_labels.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Registers every family in `registry`; `latency_buckets` are `[telemetry] latency_buckets` (seconds).
    pub fn new(registry: &Registry, latency_buckets: Vec<f64>) -> Result<Self, MetricsError> {
        let r = registry;
        let rpc_buckets = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let msg_buckets = vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0];
        let lifecycle_events_total = IntCounter::new(
            "relayd_lifecycle_events_total",
            "Packet lifecycle changes seen by the coordinator",
        )?;
        r.register(Box::new(lifecycle_events_total.clone()))?;
        let packet_builders = IntGauge::new("relayd_packet_builders", "Live packet builders")?;
        r.register(Box::new(packet_builders.clone()))?;
        let packet_builders_waiting = IntGauge::new(
            "relayd_packet_builders_waiting",
            "Packets waiting for a packet builder slot",
        )?;
        r.register(Box::new(packet_builders_waiting.clone()))?;
        let inner = Families {
            packets: gauge(
                r,
                "relayd_packets",
                "Packets by lifecycle state",
                &["chain", "channel", "state"],
            )?,
            relay_latency_seconds: histogram(
                r,
                "relayd_relay_latency_seconds",
                "Seconds from a packet's detection to its acknowledgement on the source",
                &["chain", "channel"],
                latency_buckets,
            )?,
            txs_submitted_total: counter(
                r,
                "relayd_txs_submitted_total",
                "Transactions broadcast",
                &["chain"],
            )?,
            txs_failed_total: counter(
                r,
                "relayd_txs_failed_total",
                "Transactions that failed or were refused",
                &["chain"],
            )?,
            txs_confirmed_total: counter(
                r,
                "relayd_txs_confirmed_total",
                "Transactions included in a block",
                &["chain"],
            )?,
            tx_messages: histogram(
                r,
                "relayd_tx_messages",
                "Messages per confirmed transaction",
                &["chain"],
                msg_buckets,
            )?,
            tx_gas_used_total: counter(
                r,
                "relayd_tx_gas_used_total",
                "Gas used by confirmed transactions",
                &["chain"],
            )?,
            rpc_errors_total: counter(
                r,
                "relayd_rpc_errors_total",
                "Failed requests to a chain's node",
                &["chain"],
            )?,
            rpc_request_duration_seconds: histogram(
                r,
                "relayd_rpc_request_duration_seconds",
                "Seconds a chain's node took to answer",
                &["chain"],
                rpc_buckets,
            )?,
            websocket_reconnects_total: counter(
                r,
                "relayd_websocket_reconnects_total",
                "Event WebSocket reconnections",
                &["chain"],
            )?,
            actor_restarts_total: counter(
                r,
                "relayd_actor_restarts_total",
                "Supervised actor restarts",
                &["chain", "kind"],
            )?,
            actor_mailbox_depth: gauge(
                r,
                "relayd_actor_mailbox_depth",
                "Requests sent to actors and not answered yet",
                &["chain", "kind"],
            )?,
            backlog_packets: gauge(
                r,
                "relayd_backlog_packets",
                "Unfinished packets (with records, or waiting in the intake log)",
                &["chain", "channel"],
            )?,
            backlog_oldest_sequence: gauge(
                r,
                "relayd_backlog_oldest_sequence",
                "Lowest unfinished sequence (0 when none)",
                &["chain", "channel"],
            )?,
            client_expiry_seconds: gauge(
                r,
                "relayd_client_expiry_seconds",
                "Seconds until a client's trusting period runs out (negative: expired)",
                &["chain", "client"],
            )?,
            misbehaviour_submitted_total: counter(
                r,
                "relayd_misbehaviour_submitted_total",
                "Misbehaviour evidence submitted against a client hosted on the chain",
                &["chain", "client"],
            )?,
            wallet_balance: gauge(
                r,
                "relayd_wallet_balance",
                "Relayer account balance in the fee denom's base unit, per signing key",
                &["chain", "denom", "key"],
            )?,
            wallet_low: gauge(
                r,
                "relayd_wallet_low",
                "1 while a signing account's balance is below the chain's min_balance (its lane is drained)",
                &["chain", "key"],
            )?,
            clear_operations_total: counter(
                r,
                "relayd_clear_operations_total",
                "Clearing operations by result",
                &["result"],
            )?,
            packets_cleared_total: counter(
                r,
                "relayd_packets_cleared_total",
                "Packets a clearing operation started relaying",
                &["chain", "channel"],
            )?,
            packets_skipped_total: counter(
                r,
                "relayd_packets_skipped_total",
                "Packets not relayed by policy (an ICS-20 memo or receiver over its cap), by reason",
                &["reason"],
            )?,
            lifecycle_events_total,
            chain_height: gauge(r, "relayd_chain_height", "Latest height seen", &["chain"])?,
            rpc_endpoint_up: gauge(
                r,
                "relayd_rpc_endpoint_up",
                "1 while the RPC endpoint is healthy (answers and does not lag)",
                &["chain", "endpoint"],
            )?,
            rpc_endpoint_quarantined: gauge(
                r,
                "relayd_rpc_endpoint_quarantined",
                "1 while the RPC endpoint is quarantined for serving data the light client refused",
                &["chain", "endpoint"],
            )?,
            rpc_endpoint_current: gauge(
                r,
                "relayd_rpc_endpoint_current",
                "1 for the RPC endpoint reads and the event subscription use",
                &["chain", "endpoint"],
            )?,
            rpc_endpoint_height: gauge(
                r,
                "relayd_rpc_endpoint_height",
                "Latest height the RPC endpoint reported",
                &["chain", "endpoint"],
            )?,
            packet_builders,
            packet_builders_waiting,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The families.
    pub fn families(&self) -> &Families {
        &self.inner
    }

    /// A transaction attempt ended: `Ok((messages, gas))` when confirmed, `Err` when it failed.
    pub fn tx(&self, chain: &str, outcome: Result<(usize, i64), ()>) {
        let f = &self.inner;
        f.txs_submitted_total.with_label_values(&[chain]).inc();
        match outcome {
            Ok((messages, gas)) => {
                f.txs_confirmed_total.with_label_values(&[chain]).inc();
                f.tx_messages
                    .with_label_values(&[chain])
                    .observe(messages as f64);
                f.tx_gas_used_total
                    .with_label_values(&[chain])
                    .inc_by(u64::try_from(gas).unwrap_or(0));
            }
            Err(()) => f.txs_failed_total.with_label_values(&[chain]).inc(),
        }
    }

    /// A request to a chain's node took `seconds`; `ok` says whether it succeeded.
    pub fn rpc(&self, chain: &str, seconds: f64, ok: bool) {
        self.inner
            .rpc_request_duration_seconds
            .with_label_values(&[chain])
            .observe(seconds);
        if !ok {
            self.inner
                .rpc_errors_total
                .with_label_values(&[chain])
                .inc();
        }
    }

    /// Raises a counter to `total` (a running total kept elsewhere, e.g. a supervisor's restart count); never
    /// lowers it, as Prometheus counters only grow.
    pub fn raise_to(counter: &IntCounter, total: u64) {
        let now = counter.get();
        if total > now {
            counter.inc_by(total - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_the_prefix_and_export_in_text_format() {
        let registry = Registry::new();
        let m = Metrics::new(&registry, vec![0.5, 1.0]).unwrap();
        m.tx("ibc-0", Ok((3, 120_000)));
        m.tx("ibc-0", Err(()));
        m.rpc("ibc-0", 0.02, false);
        let families = registry.gather();
        assert!(families.iter().all(|f| f.get_name().starts_with("relayd_")));
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &families, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("relayd_txs_submitted_total{chain=\"ibc-0\"} 2"));
        assert!(text.contains("relayd_txs_confirmed_total{chain=\"ibc-0\"} 1"));
        assert!(text.contains("relayd_tx_gas_used_total{chain=\"ibc-0\"} 120000"));
        assert!(text.contains("relayd_rpc_errors_total{chain=\"ibc-0\"} 1"));
    }

    #[test]
    fn raise_to_never_lowers_a_counter() {
        let c = IntCounter::new("relayd_x_total", "x").unwrap();
        Metrics::raise_to(&c, 5);
        Metrics::raise_to(&c, 3);
        assert_eq!(c.get(), 5);
    }

    #[test]
    fn every_registered_family_is_described() {
        let registry = Registry::new();
        let metrics = Metrics::new(&registry, vec![1.0]).unwrap();
        let described: Vec<String> = metrics.describe().into_iter().map(|d| d.name).collect();
        // A scrape lists the unlabelled families at once and the labelled ones once they have a series: every
        // one it lists is described, and the description covers all 29 families, each once.
        let mut gathered: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.get_name().to_owned())
            .collect();
        gathered.sort();
        assert!(gathered.iter().all(|n| described.contains(n)));
        assert_eq!(described.len(), 29);
        let mut unique = described.clone();
        unique.dedup();
        assert_eq!(unique.len(), 29);
        let packets = metrics
            .describe()
            .into_iter()
            .find(|d| d.name == "relayd_packets")
            .unwrap();
        assert_eq!(packets.labels, ["chain", "channel", "state"]);
    }

    #[test]
    fn registering_twice_in_one_registry_fails_instead_of_sharing() {
        let registry = Registry::new();
        Metrics::new(&registry, vec![1.0]).unwrap();
        assert!(Metrics::new(&registry, vec![1.0]).is_err());
    }
}
