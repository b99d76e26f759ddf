//! The LightClient actor: relayd's own light client of one chain. It verifies headers before any proof from
//! the chain is forwarded, prepares updates of the chain's clients on counterparties, answers with its verified
//! header at a height (misbehaviour detection), and keeps its trusted state fresh. Requests are served one at a time (later ones mostly hit the cache of the first).

mod actor;
pub mod source;

pub use actor::*;
pub use source::LightSource;
