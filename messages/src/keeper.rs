//! The ClientKeeper's messages: its per-client reports and an immediate check.

use actix::Message;
use serde::Serialize;

/// What the keeper last learnt about one client (the admin API's view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientReport {
    /// The chain hosting the client.
    pub host: String,
    /// The client.
    pub client_id: String,
    /// The chain it tracks.
    pub tracked: String,
    /// Its latest height when last read.
    pub latest_height: Option<u64>,
    /// The verdict: `fresh`, `refresh_due`, `alarm`, `expired`, `frozen`, `unknown`, or `unreadable`.
    pub health: String,
    /// Whether expiry is near enough to raise the alarm (or it has expired or been frozen).
    pub alarm: bool,
    /// Seconds to expiry, negative once expired.
    pub expires_in_secs: Option<i64>,
    /// The last update the keeper sent, as its transaction hash.
    pub last_refresh_tx: Option<String>,
    /// Updates sent by the keeper since it started.
    pub refreshes: u64,
    /// The last failure to read or update it.
    pub last_error: Option<String>,
    /// When it was last judged, ms since the epoch.
    pub checked_ms: u64,
}

/// The keeper's reports, one per client (ClientKeeper's view, for the admin API and tests).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<ClientReport>")]
pub struct QueryClientHealth;

/// Check every client now instead of waiting for the next interval; answered once all are judged (at start,
/// so that clearing never begins work on a path whose client is already unusable).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct CheckClients;
