//! How envelopes travel: one UDP socket, or length-framed TCP connections.
//!
//! Both carry the same authenticated envelopes ([`crate::wire`]); everything above this module
//! (the replay window, the membership layer, blocked links, reports) is the same for both.
//!
//! TCP: the node listens on its own `ip:port`. To send, it keeps one outgoing connection per
//! peer (so each direction of a pair is one FIFO, reliable channel), opened on demand from its
//! own IP, with a bounded queue of frames; a connection that fails is reopened with exponential
//! back-off, and frames that arrive while it is down or while the queue is full are dropped, as a
//! lossy network would. A frame is a big-endian `u32` length and one envelope. Incoming
//! connections are capped, close after [`IDLE`] without a frame, and a connection that sends a
//! frame of a bad length is closed. Because the source port of a connection is ephemeral, a TCP
//! envelope's sender must match the connection's IP (UDP: its IP and port).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Error;
use crate::wire::{DropReason, MAX_DATAGRAM};

/// Frames queued for one peer before new ones are dropped.
pub const PEER_QUEUE: usize = 256;
/// Frames received and not yet handled before readers wait (TCP flow control pushes back).
const INBOUND_QUEUE: usize = 1024;
/// An incoming connection without a frame for this long is closed.
pub const IDLE: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Which transport a node uses (`--transport`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// One UDP socket: datagrams may be lost, duplicated or reordered.
    #[default]
    Udp,
    /// Length-framed TCP connections: reliable, FIFO per direction of a pair.
    Tcp,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
        })
    }
}

/// Where an envelope came from, as far as the transport can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The exact `ip:port` (UDP).
    Addr(SocketAddr),
    /// The IP of the connection (TCP; its port is ephemeral).
    Ip(IpAddr),
}

impl Source {
    /// Whether an envelope whose header names `sender` may have come from here.
    pub fn matches(self, sender: SocketAddr) -> bool {
        match self {
            Source::Addr(a) => a == sender,
            Source::Ip(ip) => ip == sender.ip(),
        }
    }

    /// For logs.
    pub fn addr(self) -> SocketAddr {
        match self {
            Source::Addr(a) => a,
            Source::Ip(ip) => SocketAddr::new(ip, 0),
        }
    }
}

/// What [`Transport::recv`] got.
pub enum Incoming {
    /// An envelope of `len` bytes is in the buffer.
    Envelope {
        /// Its length.
        len: usize,
        /// Where it came from.
        source: Source,
    },
    /// A frame that could not be read (its connection is closed).
    Dropped {
        /// Why.
        reason: DropReason,
        /// The connection's peer.
        source: Source,
    },
}

/// A bound transport.
pub enum Transport {
    /// UDP.
    Udp {
        /// Receives.
        socket: UdpSocket,
        /// The same socket for sending without waiting (tokio's `try_send_to` reports
        /// `WouldBlock` until the socket was first polled for writing, which would drop the boot
        /// messages).
        sender: std::net::UdpSocket,
    },
    /// TCP.
    Tcp(Tcp),
}

/// The TCP side: outgoing connections by peer, and what the readers of incoming ones got.
pub struct Tcp {
    me: SocketAddr,
    peers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    max_peers: usize,
    writers: JoinSet<()>,
    inbound: mpsc::Receiver<Inbound>,
}

enum Inbound {
    Frame(Vec<u8>, IpAddr),
    Bad(DropReason, IpAddr),
}

impl Transport {
    /// Binds `me`; TCP accepts at most `max_connections` incoming connections at once.
    pub fn bind(
        kind: TransportKind,
        me: SocketAddr,
        max_connections: usize,
    ) -> Result<Transport, Error> {
        let bind_error = |source| Error::Bind { addr: me, source };
        match kind {
            TransportKind::Udp => {
                let std_socket = std::net::UdpSocket::bind(me).map_err(bind_error)?;
                std_socket.set_nonblocking(true).map_err(bind_error)?;
                let sender = std_socket.try_clone().map_err(bind_error)?;
                let socket = UdpSocket::from_std(std_socket).map_err(bind_error)?;
                Ok(Transport::Udp { socket, sender })
            }
            TransportKind::Tcp => {
                let socket = tcp_socket(me).map_err(bind_error)?;
                socket.set_reuseaddr(true).map_err(bind_error)?;
                socket.bind(me).map_err(bind_error)?;
                let listener = socket.listen(1024).map_err(bind_error)?;
                let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
                tokio::spawn(accept(listener, tx, max_connections));
                Ok(Transport::Tcp(Tcp {
                    me,
                    peers: HashMap::new(),
                    max_peers: max_connections,
                    writers: JoinSet::new(),
                    inbound,
                }))
            }
        }
    }

    /// Sends one envelope without waiting; a full queue or socket buffer loses it.
    pub fn send(&mut self, to: SocketAddr, envelope: &[u8]) {
        match self {
            Transport::Udp { sender, .. } => {
                if let Err(e) = sender.send_to(envelope, to) {
                    tracing::debug!(%to, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp(tcp) => tcp.send(to, envelope),
        }
    }

    /// The next envelope, copied into `buf` (at least [`MAX_DATAGRAM`] + 1 bytes). Cancel-safe.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<Incoming> {
        match self {
            Transport::Udp { socket, .. } => {
                let (len, from) = socket.recv_from(buf).await?;
                Ok(Incoming::Envelope {
                    len,
                    source: Source::Addr(from),
                })
            }
            Transport::Tcp(tcp) => match tcp.inbound.recv().await {
                Some(Inbound::Frame(frame, ip)) => {
                    buf[..frame.len()].copy_from_slice(&frame);
                    Ok(Incoming::Envelope {
                        len: frame.len(),
                        source: Source::Ip(ip),
                    })
                }
                Some(Inbound::Bad(reason, ip)) => Ok(Incoming::Dropped {
                    reason,
                    source: Source::Ip(ip),
                }),
                None => Err(io::Error::other("the TCP listener stopped")),
            },
        }
    }

    /// Closes the outgoing connections to peers `keep` rejects (members that left).
    pub fn retain(&mut self, keep: impl Fn(&SocketAddr) -> bool) {
        if let Transport::Tcp(tcp) = self {
            tcp.peers.retain(|peer, _| keep(peer));
        }
    }

    /// Gives queued frames up to `grace` to leave (a leaving node's `Left`).
    pub async fn flush(self, grace: Duration) {
        if let Transport::Tcp(mut tcp) = self {
            tcp.peers.clear();
            let all = async { while tcp.writers.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(grace, all).await;
        }
    }
}

fn tcp_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
}

impl Tcp {
    fn send(&mut self, to: SocketAddr, envelope: &[u8]) {
        if !self.peers.contains_key(&to) {
            if self.peers.len() >= self.max_peers {
                // Closed queues (writers that ended) make room first.
                self.peers.retain(|_, q| !q.is_closed());
                if self.peers.len() >= self.max_peers {
                    return tracing::debug!(%to, "too many TCP peers; frame dropped");
                }
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            self.writers.spawn(write_to(self.me.ip(), to, rx));
            self.peers.insert(to, tx);
        }
        // Length and envelope in one buffer: one write, one segment.
        let mut frame = Vec::with_capacity(envelope.len() + 4);
        frame.extend_from_slice(&(envelope.len() as u32).to_be_bytes());
        frame.extend_from_slice(envelope);
        if self.peers[&to].try_send(frame).is_err() {
            tracing::debug!(%to, "TCP send queue full; frame dropped");
        }
        // Reap writers that finished, so the set stays as small as the peer table.
        while self.writers.try_join_next().is_some() {}
    }
}

/// One peer's outgoing connection: writes queued frames, reconnecting with back-off.
async fn write_to(me: IpAddr, to: SocketAddr, mut frames: mpsc::Receiver<Vec<u8>>) {
    let mut stream: Option<TcpStream> = None;
    let mut backoff = MIN_BACKOFF;
    let mut next_try = Instant::now();
    while let Some(frame) = frames.recv().await {
        if stream.is_none() {
            if Instant::now() < next_try {
                continue; // backing off: lost, as a datagram to a dead peer would be
            }
            match tokio::time::timeout(CONNECT_TIMEOUT, connect(me, to)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    backoff = MIN_BACKOFF;
                }
                _ => {
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        match tokio::time::timeout(WRITE_TIMEOUT, s.write_all(&frame)).await {
            Ok(Ok(())) => {}
            _ => {
                tracing::debug!(%to, "TCP connection lost; reconnecting on the next frame");
                stream = None;
            }
        }
    }
}

/// Connects to `to` from this node's own IP, so the peer sees the address it knows.
async fn connect(me: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = tcp_socket(to)?;
    socket.bind(SocketAddr::new(me, 0))?;
    let stream = socket.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn accept(listener: TcpListener, tx: mpsc::Sender<Inbound>, cap: usize) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= cap {
            tracing::debug!(%peer, "too many TCP connections; refused");
            continue;
        }
        if tx.is_closed() {
            return;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (tx, active) = (tx.clone(), active.clone());
        tokio::spawn(async move {
            read_from(stream, peer.ip(), &tx).await;
            active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads frames from one incoming connection until it closes, idles or sends a bad length.
async fn read_from(stream: TcpStream, peer: IpAddr, tx: &mpsc::Sender<Inbound>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut len = [0u8; 4];
        match tokio::time::timeout(IDLE, reader.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_DATAGRAM {
            let reason = if len == 0 {
                DropReason::Malformed
            } else {
                DropReason::Oversized
            };
            let _ = tx.send(Inbound::Bad(reason, peer)).await;
            return;
        }
        let mut frame = vec![0u8; len];
        match tokio::time::timeout(IDLE, reader.read_exact(&mut frame)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        if tx.send(Inbound::Frame(frame, peer)).await.is_err() {
            return;
        }
    }
}
