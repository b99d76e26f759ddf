//! The configured paths, resolved on chain. Each `[[connections.paths]]` entry, or a connection without `paths`,
//! becomes the routes of the channels it names: a path naming its source port and channel is that channel, any
//! other path every channel of the connection that matches the ids it gives. Every id the file gives (both ends'
//! `client_id` and `connection_id`, `dest_port`, `dest_channel`) is compared with what the chains say, so a path
//! that means something other than the file says is refused at its key instead of relayed or skipped.

use std::path::PathBuf;

use futures::stream::{self, StreamExt, TryStreamExt};
use relayd_config::{Config, ConfigError, ConnectionEnd, Direction, KeyPath, RelayPath};
use tracing::{info, warn};

use crate::chain::any::{AnyEndpoint, ListedChannel};
use crate::chain::endpoint::{path, ChainEndpoint, ChainError, ChannelInfo, QueryHeight};
use relayd_messages::Route;

/// The file the configuration was read from and its text, so that problems found on chain name the file and
/// line of the key to fix.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file as the operator named it.
    pub file: PathBuf,
    /// Its text.
    pub text: String,
}

/// A problem found on chain at `key` of the configuration, named by file and line when the source is known.
pub(super) fn config_error(
    source: Option<&ConfigSource>,
    key: &KeyPath,
    message: String,
) -> ConfigError {
    match source {
        Some(s) => ConfigError::at(&s.file, &s.text, key, message),
        None => ConfigError {
            file: PathBuf::from("configuration"),
            line: None,
            key: key.to_string(),
            message,
        },
    }
}

/// Why a configured path has no routes.
#[derive(Debug)]
pub(super) enum PathError {
    /// A chain request failed; a node that does not answer ([`ChainError::Rpc`]) is asked again later.
    Chain(ChainError),
    /// The chains contradict the configuration at `key`.
    Config {
        /// The key to fix.
        key: KeyPath,
        /// What the chains say instead.
        message: String,
    },
}

impl From<ChainError> for PathError {
    fn from(e: ChainError) -> Self {
        Self::Chain(e)
    }
}

/// How many channels of one path are read from the chains at once while it resolves.
const RESOLVE_IN_FLIGHT: usize = 16;

/// Which of a path's ids disagrees with a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    SrcClient,
    SrcConnection,
    DstClient,
    DstConnection,
    DstPort,
    DstChannel,
}

/// A channel and its counterparty as both chains describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    src_connection: String,
    src_client: String,
    dst_port: String,
    dst_channel: String,
    dst_connection: String,
    dst_client: String,
    ordered: bool,
}

/// What one configured path asks for; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Wanted {
    src_client: String,
    src_connection: Option<String>,
    dst_client: String,
    dst_connection: Option<String>,
    src_port: Option<String>,
    src_channel: Option<String>,
    dst_port: Option<String>,
    dst_channel: Option<String>,
}

impl Wanted {
    /// The first id of the path that `found` contradicts, with the configured and the actual value.
    fn mismatch(&self, found: &Found) -> Option<(Field, String, String)> {
        let checks = [
            (Field::SrcClient, Some(&self.src_client), &found.src_client),
            (
                Field::SrcConnection,
                self.src_connection.as_ref(),
                &found.src_connection,
            ),
            (Field::DstClient, Some(&self.dst_client), &found.dst_client),
            (
                Field::DstConnection,
                self.dst_connection.as_ref(),
                &found.dst_connection,
            ),
            (Field::DstPort, self.dst_port.as_ref(), &found.dst_port),
            (
                Field::DstChannel,
                self.dst_channel.as_ref(),
                &found.dst_channel,
            ),
        ];
        checks.into_iter().find_map(|(field, want, actual)| {
            want.filter(|w| *w != actual)
                .map(|w| (field, w.clone(), actual.clone()))
        })
    }

    /// Whether a listed channel of the source chain may belong to this path (its counterparty still to be read).
    fn may_match(&self, c: &ListedChannel) -> bool {
        let is = |want: &Option<String>, actual: &str| want.as_deref().is_none_or(|w| w == actual);
        c.client == self.src_client
            && is(&self.src_connection, &c.route.connection)
            && is(&self.src_port, &c.port)
            && is(&self.src_channel, &c.channel)
    }
}

/// One configured path and where in the file it was written.
pub(super) struct PathPlan {
    /// `chain:port/channel`, `*` standing for ids the path leaves open; readiness reports list it.
    pub(super) name: String,
    /// `connections[i]`.
    conn: KeyPath,
    /// `connections[i].paths[j]`, or `None` for a connection without `paths`.
    at: Option<KeyPath>,
    pub(super) src: AnyEndpoint,
    pub(super) dst: AnyEndpoint,
    wanted: Wanted,
    priority: u8,
    both_ways: bool,
}

/// Every path `config` asks for, in file order, with the endpoint of each end's chain from `endpoint`.
pub(super) fn plans(
    config: &Config,
    endpoint: impl Fn(&relayd_messages::ChainId) -> Option<AnyEndpoint>,
) -> Vec<PathPlan> {
    let mut out = Vec::new();
    for (i, conn) in config.connections.iter().flatten().enumerate() {
        // Validation requires both ends and a chain for each; an entry without them has nothing to resolve.
        let (Some(src_end), Some(dst_end)) = (&conn.src, &conn.dest) else {
            continue;
        };
        let (Some(a), Some(b)) = (end_chain(config, src_end), end_chain(config, dst_end)) else {
            continue;
        };
        let (Some(src), Some(dst)) = (endpoint(a), endpoint(b)) else {
            continue;
        };
        let every = [RelayPath {
            src_port: None,
            dest_port: None,
            src_channel: None,
            dest_channel: None,
            direction: Direction::Bidirectional,
            priority: 0,
        }];
        let conn_key = KeyPath::root().key("connections").index(i);
        let listed = conn.paths.as_deref();
        for (j, path) in listed.unwrap_or(&every).iter().enumerate() {
            let id = |v: Option<&str>| v.map(str::to_owned);
            let wanted = Wanted {
                src_client: src_end.client_id.to_string(),
                src_connection: id(src_end.connection_id.as_ref().map(|c| c.as_str())),
                dst_client: dst_end.client_id.to_string(),
                dst_connection: id(dst_end.connection_id.as_ref().map(|c| c.as_str())),
                src_port: id(path.src_port.as_ref().map(|p| p.as_str())),
                src_channel: id(path.src_channel.as_ref().map(|c| c.as_str())),
                dst_port: id(path.dest_port.as_ref().map(|p| p.as_str())),
                dst_channel: id(path.dest_channel.as_ref().map(|c| c.as_str())),
            };
            let star = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".to_owned());
            let mut name = format!(
                "{a}:{}/{}",
                star(&wanted.src_port),
                star(&wanted.src_channel)
            );
            if wanted.src_channel.is_none() {
                name += &format!(" over {}", wanted.src_client);
            }
            out.push(PathPlan {
                name,
                conn: conn_key.clone(),
                at: listed.map(|_| conn_key.key("paths").index(j)),
                src: src.clone(),
                dst: dst.clone(),
                wanted,
                priority: path.priority,
                both_ways: path.direction == Direction::Bidirectional,
            });
        }
    }
    out
}

/// The chain an end is on: the one named by `chain_id`, else the one listing its client.
pub(super) fn end_chain<'a>(
    config: &'a Config,
    end: &ConnectionEnd,
) -> Option<&'a relayd_messages::ChainId> {
    match &end.chain_id {
        Some(id) => config.chains.iter().find(|c| &c.id == id),
        None => config
            .chains
            .iter()
            .find(|c| c.client_ids.contains(&end.client_id)),
    }
    .map(|c| &c.id)
}

impl PathPlan {
    fn key(&self, field: Field) -> KeyPath {
        let path = |k: &str| self.at.clone().unwrap_or_else(|| self.conn.clone()).key(k);
        match field {
            Field::SrcClient => self.conn.key("src").key("client_id"),
            Field::SrcConnection => self.conn.key("src").key("connection_id"),
            Field::DstClient => self.conn.key("dest").key("client_id"),
            Field::DstConnection => self.conn.key("dest").key("connection_id"),
            Field::DstPort => path("dest_port"),
            Field::DstChannel => path("dest_channel"),
        }
    }

    fn config(&self, key: KeyPath, message: String) -> PathError {
        PathError::Config { key, message }
    }

    /// The path's routes (one per channel, or two when relayed both ways), read from both chains.
    pub(super) async fn resolve(&self) -> Result<Vec<Route>, PathError> {
        self.check_connections().await?;
        let named = match (&self.wanted.src_port, &self.wanted.src_channel) {
            (Some(port), Some(channel)) => Some((port.clone(), channel.clone())),
            _ => None,
        };
        let mut routes = Vec::new();
        if let Some((port, channel)) = named {
            let found = self.found(&port, &channel, None).await?.ok_or_else(|| {
                PathError::Chain(ChainError::rpc(
                    self.src.chain_id(),
                    &format!("resolve {}", self.name),
                    "the channel's handshake has not reached its counterparty yet",
                ))
            })?;
            if let Some((field, want, actual)) = self.wanted.mismatch(&found) {
                return Err(self.config(
                    self.key(field),
                    format!(
                        "{want:?} does not match the chains: for channel {port}/{channel} on {} they say {actual:?}",
                        self.src.chain_id()
                    ),
                ));
            }
            routes.push(self.route(&port, &channel, found)?);
        } else {
            let listed = self.src.listed_channels().await?;
            let candidates: Vec<&ListedChannel> =
                listed.iter().filter(|c| self.wanted.may_match(c)).collect();
            // Each channel costs a few reads on both chains; with hundreds of channels on one connection, asking
            // them one after another is most of a start, so a bounded number are in flight at once (in order).
            let founds: Vec<Option<Found>> = stream::iter(
                candidates
                    .iter()
                    .map(|c| self.found(&c.port, &c.channel, Some(c))),
            )
            .buffered(RESOLVE_IN_FLIGHT)
            .try_collect()
            .await?;
            for (c, found) in candidates.into_iter().zip(founds) {
                let Some(found) = found else {
                    continue;
                };
                if self.wanted.mismatch(&found).is_none() {
                    routes.push(self.route(&c.port, &c.channel, found)?);
                }
            }
            if routes.is_empty() {
                self.check_clients().await?;
                // A channel the path names by its destination must exist; an open-ended path may wait for one.
                if let Some(dst_channel) = &self.wanted.dst_channel {
                    return Err(self.config(
                        self.key(Field::DstChannel),
                        format!(
                            "no channel of this connection on {} has {dst_channel:?} on {} as its counterparty",
                            self.src.chain_id(),
                            self.dst.chain_id()
                        ),
                    ));
                }
                warn!(path = %self.name, "no open channel on the connection matches this path yet; a channel opened later is relayed from the next start");
            }
        }
        let mut out = Vec::new();
        for route in routes {
            info!(path = %self.name, from = %route.src_channel, to = %route.dst, dst_channel = %route.dst_channel, priority = route.priority, "relaying");
            if self.both_ways {
                out.push(route.reversed());
            }
            out.push(route);
        }
        Ok(out)
    }

    /// Each end's `client_id` is a client on its chain (asked only when no channel matched, to say why).
    async fn check_clients(&self) -> Result<(), PathError> {
        let ends = [
            (&self.src, &self.wanted.src_client, Field::SrcClient),
            (&self.dst, &self.wanted.dst_client, Field::DstClient),
        ];
        for (chain, client, field) in ends {
            let raw = chain
                .query_ibc(&path::client_state(client), QueryHeight::Latest, false)
                .await?;
            if raw.value.is_empty() {
                return Err(self.config(
                    self.key(field),
                    format!("no client {client:?} on {}", chain.chain_id()),
                ));
            }
        }
        Ok(())
    }

    /// Each end's `connection_id`, when given, is on its chain and built on the end's `client_id`.
    async fn check_connections(&self) -> Result<(), PathError> {
        let ends = [
            (
                &self.src,
                &self.wanted.src_connection,
                &self.wanted.src_client,
                Field::SrcConnection,
            ),
            (
                &self.dst,
                &self.wanted.dst_connection,
                &self.wanted.dst_client,
                Field::DstConnection,
            ),
        ];
        for (chain, connection, client, field) in ends {
            let Some(connection) = connection else {
                continue;
            };
            let raw = chain
                .query_ibc(&path::connection(connection), QueryHeight::Latest, false)
                .await?;
            if raw.value.is_empty() {
                return Err(self.config(
                    self.key(field),
                    format!("no connection {connection:?} on {}", chain.chain_id()),
                ));
            }
            let actual = chain.connection_client(connection).await?;
            if &actual != client {
                return Err(self.config(
                    self.key(field),
                    format!(
                        "connection {connection:?} on {} is built on client {actual:?}, not on this end's client_id {client:?}",
                        chain.chain_id()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The channel `port`/`channel` of the source chain and its counterparty, or `None` while its handshake has
    /// not named the counterparty channel. A channel the path names (`listed` is `None`) that is not there is an
    /// error at `src_channel`; a channel from the source chain's listing (`listed`) is there, and its listed
    /// connection's client is not read again.
    async fn found(
        &self,
        port: &str,
        channel: &str,
        listed: Option<&ListedChannel>,
    ) -> Result<Option<Found>, PathError> {
        let (a, b) = (&self.src, &self.dst);
        // A listed channel's end came with the listing, read moments ago: not read again. A named one is read
        // once, which also proves it exists.
        let (here, src_client) = match listed {
            Some(l) => (l.route.clone(), Some(l.client.clone())),
            None => {
                let src_path = path::channel(port, channel);
                let raw = a.query_ibc(&src_path, QueryHeight::Latest, false).await?;
                if raw.value.is_empty() {
                    let key = self.at.clone().unwrap_or_else(|| self.conn.clone());
                    return Err(self.config(
                        key.key("src_channel"),
                        format!("no channel {port}/{channel} on {}", a.chain_id()),
                    ));
                }
                (
                    ChannelInfo::decode(a.chain_id(), &src_path, &raw.value)?,
                    None,
                )
            }
        };
        if here.counterparty_channel.is_empty() {
            return Ok(None);
        }
        let src_client = match src_client {
            Some(client) => client,
            None => a.connection_client(&here.connection).await?,
        };
        let (dst_port, dst_channel) = (&here.counterparty_port, &here.counterparty_channel);
        let dst_path = path::channel(dst_port, dst_channel);
        let raw = b.query_ibc(&dst_path, QueryHeight::Latest, false).await?;
        if raw.value.is_empty() {
            // The source end's client tracks some other chain than the destination end's.
            return Err(self.config(
                self.key(Field::DstClient),
                format!(
                    "channel {port}/{channel} on {} names {dst_port}/{dst_channel} as its counterparty, which {} does not have: client {src_client:?} does not track {}",
                    a.chain_id(),
                    b.chain_id(),
                    b.chain_id()
                ),
            ));
        }
        // The end just read, not read again.
        let there = ChannelInfo::decode(b.chain_id(), &dst_path, &raw.value)?;
        if there.counterparty_channel.is_empty() {
            return Ok(None);
        }
        if there.counterparty_port != port || there.counterparty_channel != channel {
            return Err(PathError::Chain(ChainError::Node {
                chain: a.chain_id().to_owned(),
                call: format!("resolve {}", self.name),
                reason: format!(
                    "{port}/{channel} names {dst_port}/{dst_channel} on {} as its counterparty, which names {}/{} instead",
                    b.chain_id(),
                    there.counterparty_port,
                    there.counterparty_channel
                ),
            }));
        }
        let dst_client = b.connection_client(&there.connection).await?;
        Ok(Some(Found {
            src_connection: here.connection,
            src_client,
            dst_port: here.counterparty_port,
            dst_channel: here.counterparty_channel,
            dst_connection: there.connection,
            dst_client,
            ordered: here.ordered,
        }))
    }

    fn route(&self, port: &str, channel: &str, found: Found) -> Result<Route, PathError> {
        let bad = |chain: &str, e: String| {
            PathError::Chain(ChainError::Node {
                chain: chain.to_owned(),
                call: format!("resolve {}", self.name),
                reason: e,
            })
        };
        let (a, b) = (self.src.chain_id(), self.dst.chain_id());
        let chain = |c: &str| relayd_messages::ChainId::new(c).map_err(|e| bad(c, e.to_string()));
        let client = |c: &str, id: String| {
            relayd_messages::ClientId::new(id).map_err(|e| bad(c, e.to_string()))
        };
        Ok(Route {
            src: chain(a)?,
            src_port: port.to_owned(),
            src_channel: channel.to_owned(),
            dst: chain(b)?,
            dst_port: found.dst_port,
            dst_channel: found.dst_channel,
            dst_client: client(b, found.dst_client)?,
            src_client: client(a, found.src_client)?,
            ordered: found.ordered,
            priority: self.priority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Found {
        Found {
            src_connection: "connection-0".into(),
            src_client: "07-tendermint-0".into(),
            dst_port: "transfer".into(),
            dst_channel: "channel-3".into(),
            dst_connection: "connection-2".into(),
            dst_client: "07-tendermint-1".into(),
            ordered: false,
        }
    }

    fn wanted() -> Wanted {
        Wanted {
            src_client: "07-tendermint-0".into(),
            dst_client: "07-tendermint-1".into(),
            ..Wanted::default()
        }
    }

    #[test]
    fn ids_left_open_match_any_channel_of_the_clients() {
        assert_eq!(wanted().mismatch(&found()), None);
    }

    #[test]
    fn each_given_id_is_compared_and_the_first_difference_named() {
        let cases = [
            (
                Wanted {
                    src_client: "07-tendermint-9".into(),
                    ..wanted()
                },
                Field::SrcClient,
            ),
            (
                Wanted {
                    src_connection: Some("connection-7".into()),
                    ..wanted()
                },
                Field::SrcConnection,
            ),
            (
                Wanted {
                    dst_client: "07-tendermint-9".into(),
                    ..wanted()
                },
                Field::DstClient,
            ),
            (
                Wanted {
                    dst_connection: Some("connection-7".into()),
                    ..wanted()
                },
                Field::DstConnection,
            ),
            (
                Wanted {
                    dst_port: Some("oracle".into()),
                    ..wanted()
                },
                Field::DstPort,
            ),
            (
                Wanted {
                    dst_channel: Some("channel-9".into()),
                    ..wanted()
                },
                Field::DstChannel,
            ),
        ];
        for (w, field) in cases {
            let (got, _, actual) = w.mismatch(&found()).expect("a mismatch");
            assert_eq!(got, field);
            assert!(!actual.is_empty());
        }
        let right = Wanted {
            src_connection: Some("connection-0".into()),
            dst_connection: Some("connection-2".into()),
            dst_port: Some("transfer".into()),
            dst_channel: Some("channel-3".into()),
            ..wanted()
        };
        assert_eq!(right.mismatch(&found()), None);
    }

    #[test]
    fn listed_channels_are_narrowed_by_client_connection_port_and_channel() {
        let listed = ListedChannel {
            port: "transfer".into(),
            channel: "channel-0".into(),
            route: crate::chain::endpoint::ChannelInfo {
                counterparty_port: "transfer".into(),
                counterparty_channel: "channel-3".into(),
                connection: "connection-0".into(),
                ordered: false,
                open: true,
            },
            client: "07-tendermint-0".into(),
        };
        assert!(wanted().may_match(&listed));
        let other_client = ListedChannel {
            client: "07-tendermint-5".into(),
            ..listed.clone()
        };
        assert!(!wanted().may_match(&other_client));
        let port = Wanted {
            src_port: Some("transfer".into()),
            ..wanted()
        };
        assert!(port.may_match(&listed));
        let other_port = Wanted {
            src_port: Some("oracle".into()),
            ..wanted()
        };
        assert!(!other_port.may_match(&listed));
        let conn = Wanted {
            src_connection: Some("connection-1".into()),
            ..wanted()
        };
        assert!(!conn.may_match(&listed));
    }
}
