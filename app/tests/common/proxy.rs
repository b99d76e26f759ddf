//! A TCP proxy in front of a node for the tests that take an RPC endpoint away mid-stream: killing the proxy
//! closes its port and every connection through it at once, as a node that goes away.

use std::net::SocketAddr;

use tokio::task::JoinSet;

/// A TCP proxy in front of a node; dropping it (or [`Proxy::kill`]) closes its port and every connection
/// through it at once.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    /// A proxy on a free local port forwarding to `to`.
    pub async fn start(to: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Connections live in this set, so that aborting the accept task drops (closes) them all.
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self { addr, tasks }
    }

    /// Its address as an RPC endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes the port and every connection through it.
    pub async fn kill(mut self) {
        self.tasks.shutdown().await;
    }
}

/// A local port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
