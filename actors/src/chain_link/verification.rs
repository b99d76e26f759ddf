//! The verification alarm of one chain: what relayd refused of the chain's node because it did not verify against
//! relayd's own light client (a light-client header or block that breaks a rule, a state proof that does not prove
//! the value read). A refusal means the node lied or serves another chain, so it is counted and kept for the
//! operator (the admin API's `/chains` and `/health`), apart from the circuit breaker, which also opens on a node
//! that is merely down. Pure: the caller passes the time and logs the transitions this returns.

use serde::Serialize;

/// What relayd checks of a node before it forwards anything read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// A header or light-client block, checked by relayd's light client of the chain.
    LightClient,
    /// A value read with its proof, checked against the root relayd's light client verified (or against what
    /// the chain's own events said the value is).
    Proof,
}

/// One kind of check, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckStatus {
    /// Refusals since relayd started.
    pub refused: u64,
    /// Whether the latest check of this kind refused (cleared by the next one that verifies).
    pub alarm: bool,
    /// Why the latest refusal was made.
    pub last_error: Option<String>,
    /// When the latest refusal was made, ms since the epoch.
    pub last_refused_ms: Option<u64>,
}

/// The chain's verification alarm, as the admin API shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerificationStatus {
    /// Whether either check is in alarm.
    pub alarm: bool,
    /// Light-client headers and blocks.
    pub light_client: CheckStatus,
    /// Values read with proofs.
    pub proofs: CheckStatus,
}

/// How a recorded outcome changed the alarm, for the caller to log once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// This refusal raised the alarm of its check.
    Raised,
    /// This verification cleared the alarm of its check.
    Cleared,
    /// No change: another refusal while in alarm, or a verification while not.
    Unchanged,
}

/// The record of one chain's checks.
#[derive(Debug, Clone, Default)]
pub struct VerificationRecord {
    light_client: CheckStatus,
    proofs: CheckStatus,
}

impl VerificationRecord {
    fn of(&mut self, check: Check) -> &mut CheckStatus {
        match check {
            Check::LightClient => &mut self.light_client,
            Check::Proof => &mut self.proofs,
        }
    }

    /// A `check` refused what the node served, for `reason`, at `now_ms`.
    pub fn refused(&mut self, check: Check, reason: &str, now_ms: u64) -> Transition {
        let status = self.of(check);
        status.refused = status.refused.saturating_add(1);
        status.last_error = Some(reason.to_owned());
        status.last_refused_ms = Some(now_ms);
        if std::mem::replace(&mut status.alarm, true) {
            Transition::Unchanged
        } else {
            Transition::Raised
        }
    }

    /// A `check` verified what the node served.
    pub fn verified(&mut self, check: Check) -> Transition {
        if std::mem::replace(&mut self.of(check).alarm, false) {
            Transition::Cleared
        } else {
            Transition::Unchanged
        }
    }

    /// What the admin API shows.
    pub fn status(&self) -> VerificationStatus {
        VerificationStatus {
            alarm: self.light_client.alarm || self.proofs.alarm,
            light_client: self.light_client.clone(),
            proofs: self.proofs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_raises_the_alarm_of_its_check_until_one_of_the_same_kind_verifies() {
        let mut record = VerificationRecord::default();
        assert_eq!(record.status(), VerificationStatus::default());
        assert_eq!(record.verified(Check::Proof), Transition::Unchanged);

        assert_eq!(
            record.refused(Check::LightClient, "approval 0 is not valid", 10),
            Transition::Raised
        );
        assert_eq!(
            record.refused(Check::LightClient, "approval 1 is not valid", 20),
            Transition::Unchanged
        );
        let status = record.status();
        assert!(status.alarm);
        assert_eq!(status.light_client.refused, 2);
        assert_eq!(
            status.light_client.last_error.as_deref(),
            Some("approval 1 is not valid")
        );
        assert_eq!(status.light_client.last_refused_ms, Some(20));
        assert_eq!(status.proofs, CheckStatus::default());

        // A proof that verifies says nothing of the light client: its alarm stays.
        assert_eq!(record.verified(Check::Proof), Transition::Unchanged);
        assert!(record.status().alarm);
        assert_eq!(record.verified(Check::LightClient), Transition::Cleared);
        let status = record.status();
        assert!(!status.alarm);
        // The count and the last refusal stay for the operator.
        assert_eq!(status.light_client.refused, 2);
        assert!(status.light_client.last_error.is_some());

        assert_eq!(
            record.refused(Check::Proof, "another value", 30),
            Transition::Raised
        );
        assert!(record.status().alarm && record.status().proofs.alarm);
        assert!(!record.status().light_client.alarm);
    }
}
