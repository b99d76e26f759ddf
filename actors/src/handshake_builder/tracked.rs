//! Which relayed chain a hosted client tracks. A Tendermint client names its chain in its state; a `12-near`
//! client names none, so its chain is found by evidence: the NEAR chain whose block at the client's latest height,
//! as relayd's own NEAR light client verified it, commits to the state root the client's consensus state holds
//! there. Exactly one configured NEAR chain must match; a single configured NEAR chain is checked the same way.

use std::collections::HashMap;

use relayd_messages::{
    ChainId, ClientId, ClientSummary, CorrelationId, ErrorKind, QueryProof, QueryVerifiedRoot,
    RelayError,
};

use crate::chain::client_state::consensus_view;
use crate::chain::endpoint::path;
use crate::chain::proof::ProofFormat;
use crate::chain_link::ChainLink;

/// What one candidate NEAR chain answered for the client's latest height: its verified state root there, or why
/// it could not say.
pub type RootAnswer = Result<Vec<u8>, RelayError>;

/// The rule, pure: among the candidates' answers, the one chain whose verified root equals `root`. No match is
/// refused as unverified, unless a candidate could not answer yet (then unavailable, to be tried again); two
/// matches are refused as ambiguous.
pub fn pick_tracked(
    client: &ClientId,
    height: u64,
    root: &[u8],
    answers: Vec<(ChainId, RootAnswer)>,
) -> Result<ChainId, RelayError> {
    if answers.is_empty() {
        return Err(RelayError::new(
            ErrorKind::Rejected,
            format!("{client} is a NEAR client and no NEAR chain is relayed"),
        ));
    }
    let mut matched = Vec::new();
    let mut unanswered = Vec::new();
    for (chain, answer) in answers {
        match answer {
            Ok(r) if r == root => matched.push(chain),
            Ok(_) => {}
            Err(e) => unanswered.push(format!("{chain}: {e}")),
        }
    }
    match matched.len() {
        1 => Ok(matched.remove(0)),
        0 if !unanswered.is_empty() => Err(RelayError::new(
            ErrorKind::Unavailable,
            format!(
                "{client}: no relayed NEAR chain's verified block at {height} has the client's root {}; not yet known: {}",
                hex::encode(root),
                unanswered.join("; ")
            ),
        )),
        0 => Err(RelayError::new(
            ErrorKind::Unverified,
            format!(
                "{client}: no relayed NEAR chain's verified block at {height} has the client's root {}",
                hex::encode(root)
            ),
        )),
        _ => Err(RelayError::new(
            ErrorKind::Unverified,
            format!(
                "{client}: the blocks at {height} of {} all have the client's root; which one it tracks is ambiguous",
                matched
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The chain `summary` (a client hosted on `host`) tracks: named by a Tendermint client; for a `12-near` client,
/// the relayed NEAR chain picked by [`pick_tracked`] from the consensus state `host` stores at the client's latest
/// height and each NEAR chain's verified root there.
pub async fn tracked_chain(
    links: &HashMap<ChainId, ChainLink>,
    host: &ChainLink,
    correlation: CorrelationId,
    summary: &ClientSummary,
) -> Result<ChainId, RelayError> {
    let client = &summary.client_id;
    if !summary.tracked_chain.is_empty() {
        return ChainId::new(summary.tracked_chain.clone())
            .map_err(|e| RelayError::new(ErrorKind::Unverified, e.to_string()));
    }
    let height = summary.latest_height;
    let stored = host
        .query_proof(QueryProof {
            correlation,
            path: path::consensus_state(client.as_str(), 0, height),
            height: None,
        })
        .await?;
    if stored.value.is_empty() {
        return Err(RelayError::new(
            ErrorKind::Unavailable,
            format!(
                "{}: {client} has no consensus state at its latest height {height}",
                host.chain
            ),
        ));
    }
    let view = consensus_view(&stored.value).map_err(|e| {
        RelayError::new(
            ErrorKind::Unverified,
            format!("{}: {client}: {e}", host.chain),
        )
    })?;
    let mut answers = Vec::new();
    for link in links.values() {
        if !matches!(link.proofs, ProofFormat::NearState { .. }) {
            continue;
        }
        let answer = link
            .verified_root(QueryVerifiedRoot {
                correlation,
                height,
            })
            .await;
        answers.push((link.chain.clone(), answer));
    }
    answers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    pick_tracked(client, height, &view.anchor.0, answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ChainId {
        ChainId::new(s.to_owned()).unwrap()
    }

    fn client() -> ClientId {
        ClientId::new("12-near-0".to_owned()).unwrap()
    }

    #[test]
    fn picks_the_one_chain_whose_verified_root_matches() {
        let answers = vec![
            (id("near-a"), Ok(vec![1; 32])),
            (id("near-b"), Ok(vec![2; 32])),
        ];
        assert_eq!(
            pick_tracked(&client(), 7, &[2; 32], answers).unwrap(),
            id("near-b")
        );
    }

    #[test]
    fn a_single_near_chain_is_checked_not_assumed() {
        let wrong = vec![(id("near-a"), Ok(vec![1; 32]))];
        let e = pick_tracked(&client(), 7, &[2; 32], wrong).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unverified);
        let unknown = vec![(
            id("near-a"),
            Err(RelayError::new(ErrorKind::Unavailable, "not verified")),
        )];
        let e = pick_tracked(&client(), 7, &[2; 32], unknown).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn refuses_ambiguity_and_an_empty_field() {
        let twice = vec![
            (id("near-a"), Ok(vec![2; 32])),
            (id("near-b"), Ok(vec![2; 32])),
        ];
        let e = pick_tracked(&client(), 7, &[2; 32], twice).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unverified);
        let e = pick_tracked(&client(), 7, &[2; 32], Vec::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Rejected);
    }

    #[test]
    fn a_match_wins_over_a_chain_that_cannot_answer() {
        let answers = vec![
            (
                id("near-a"),
                Err(RelayError::new(ErrorKind::Unavailable, "restarting")),
            ),
            (id("near-b"), Ok(vec![2; 32])),
        ];
        assert_eq!(
            pick_tracked(&client(), 7, &[2; 32], answers).unwrap(),
            id("near-b")
        );
    }
}
