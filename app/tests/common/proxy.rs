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

/// An HTTP proxy in front of a node's JSON-RPC that hands every request to the node, and the node's answer back,
/// except for requests whose body contains `needle`: those reach the node, which acts on them, and then the
/// connection is closed without an answer, as when a node takes a transaction and goes away before replying.
/// Plain HTTP only (no WebSocket); requests are read by `Content-Length`.
pub struct Swallower {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many answers it swallowed.
    pub swallowed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tasks: JoinSet<()>,
}

/// Reads one HTTP request (head and `Content-Length` body) from `stream`; `None` at the end of the stream.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

impl Swallower {
    /// A proxy on a free local port in front of the node at `node` (`http://host:port`).
    pub async fn start(node: String, needle: &'static str) -> Self {
        Self::start_slow(node, needle, std::time::Duration::ZERO).await
    }

    /// [`Swallower::start`] that also holds every answer for `delay`, as a slower node does.
    pub async fn start_slow(
        node: String,
        needle: &'static str,
        delay: std::time::Duration,
    ) -> Self {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let swallowed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = swallowed.clone();
        let http = reqwest::Client::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (http, node, count) = (http.clone(), node.clone(), count.clone());
                conns.spawn(async move {
                    while let Some((head, body)) = read_request(&mut inbound).await {
                        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                        let swallow = String::from_utf8_lossy(&body).contains(needle);
                        let Ok(answer) = http
                            .post(format!("{node}{path}"))
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                        else {
                            return;
                        };
                        let status = answer.status().as_u16();
                        let Ok(bytes) = answer.bytes().await else {
                            return;
                        };
                        if swallow {
                            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            return;
                        }
                        tokio::time::sleep(delay).await;
                        let reply = format!(
                            "HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            bytes.len()
                        );
                        if inbound.write_all(reply.as_bytes()).await.is_err()
                            || inbound.write_all(&bytes).await.is_err()
                        {
                            return;
                        }
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            swallowed,
            tasks,
        }
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
