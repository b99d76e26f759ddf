//! The MisbehaviourWatcher's status query and the evidence it reports.

use actix::Message;
use serde::{Deserialize, Serialize};

/// One piece of evidence relayd found and what became of it (the admin API's view; kept in the state database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MisbehaviourReport {
    /// The chain hosting the client.
    pub host: String,
    /// The client.
    pub client_id: String,
    /// The chain the client tracks, whose validators signed two histories.
    pub tracked: String,
    /// The transaction that installed the conflicting header, when known.
    pub update_tx: Option<String>,
    /// The evidence.
    pub evidence: EvidenceSummary,
    /// The transaction that submitted it, once included.
    pub submitted_tx: Option<String>,
    /// Why it could not be submitted.
    pub error: Option<String>,
    /// When it was detected, ms since the epoch.
    pub detected_ms: u64,
}

/// What the watcher has judged and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MisbehaviourStatus {
    /// Headers found to be the ones relayd verified.
    pub consistent: u64,
    /// Headers waiting for the tracked chain to reach their height.
    pub pending: u64,
    /// Headers that could not be judged (undecodable, not a Tendermint header, absent from both the event and
    /// its transaction, or given up).
    pub unjudged: u64,
    /// Evidence found, oldest first.
    pub reports: Vec<MisbehaviourReport>,
}

/// The watcher's status, with every evidence it submitted (admin API, tests).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "MisbehaviourStatus")]
pub struct QueryMisbehaviour;

/// What relayd reports of a judged conflict (the admin API's view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceSummary {
    /// `conflict` or `bft_time_violation`.
    pub kind: String,
    /// The height of the accepted header.
    pub height_1: u64,
    /// The height of relayd's header.
    pub height_2: u64,
    /// Hash of the accepted header (hex).
    pub hash_1: String,
    /// Hash of relayd's header (hex).
    pub hash_2: String,
    /// What conflicts.
    pub reason: String,
}
