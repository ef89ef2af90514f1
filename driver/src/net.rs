//! TCP between nodes. Every connection opens with a hello (magic `MTW`, the wire version, then
//! the sender's node id as a little-endian u32) and then carries `components::codec` frames
//! both ways: a node answers a peer over the connection the peer opened, so clients need no
//! address of their own. Bytes that do not decode close that connection, with a logged reason
//! naming the peer and a count in [`Peers::protocol_errors`]; the node keeps serving everyone
//! else.
//!
//! Dialling: a message to a peer with no connection dials it. A connect refused (the host is
//! up, nothing listens) hands every queued message back to the node as [`Msg::Refused`], as
//! the simulator's kernel does; other failures (timeouts, unreachable) are tried again after an
//! exponential backoff with jitter ([`Backoff`]), each try bounded by [`CONNECT_TIMEOUT`];
//! after [`DIAL_ATTEMPTS`] the frames queued for it are dropped (as a network may drop them:
//! the components' own timeouts and retries take over) and the next message dials again. A
//! connection to a peer that ends (the peer's process died, the peer closed it) is reported
//! to the node as [`Msg::Reset`] from that peer, as a kill is in the simulator. A write that
//! does not finish within [`WRITE_TIMEOUT`] (a peer that stopped reading) closes the
//! connection.
//!
//! At most [`QUEUE_FRAMES`] frames and [`QUEUE_BYTES`] bytes wait for one peer (a slow or
//! unreachable peer cannot take the node's memory), and every frame the driver gives up on (the
//! queue full, no address for the peer, a peer unreachable through every try, a failed
//! handshake, a write that failed or timed out and what was queued behind it) is counted in
//! [`Peers::frames_dropped`] and logged. Frames a dead connection had already handed to the
//! kernel are not counted: the node hears [`Msg::Reset`] for them, as for a kill in the
//! simulator. Each connection's writer is registered under its own number, so
//! that the end of an old connection forgets only itself, never a newer one to the same peer.
//! On the receiving side at most [`INBOX_MESSAGES`] wait for the node; past that its
//! connections stop reading and TCP pushes back on the senders.

use minitwin_components::codec::{self, FrameDecoder, WIRE_VERSION};
use minitwin_components::rng::Rng;
use minitwin_components::{Msg, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The hello: these three bytes, the wire version, the sender's node id.
pub const MAGIC: &[u8; 3] = b"MTW";
/// How long one connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one frame's write may take before the connection is given up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may take to say hello (its TLS handshake included).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connects tried before queued frames are dropped.
pub const DIAL_ATTEMPTS: u32 = 8;
/// Frames that may wait for one peer; more are dropped and counted. At 4,000 messages a second
/// that is 16 s of a peer being dialled through every try (8 connects of up to 1 s and their
/// backoffs, about 13 s), so the bound only bites on a peer that cannot keep up.
pub const QUEUE_FRAMES: usize = 65_536;
/// Bytes that may wait for one peer: four of the largest frames (a re-clone's state).
pub const QUEUE_BYTES: u64 = 4 * codec::MAX_FRAME_LEN as u64;
/// Messages received and not yet handled by the node. Past this its connections stop
/// reading: TCP pushes back on the senders (whose writes give up after [`WRITE_TIMEOUT`] if
/// the node stays behind), as a real server's full socket buffers do; nothing is buffered
/// without bound and nothing is lost on the receiving side.
pub const INBOX_MESSAGES: usize = 65_536;

/// The 8-byte hello `me` sends first.
pub fn hello(me: NodeId) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..3].copy_from_slice(MAGIC);
    h[3] = WIRE_VERSION;
    h[4..].copy_from_slice(&me.to_le_bytes());
    h
}

/// The node id a hello names, or why it is refused.
pub fn parse_hello(h: &[u8; 8]) -> Result<NodeId, String> {
    if &h[..3] != MAGIC {
        return Err(format!("sent no minitwin hello (got {:?})", &h[..4]));
    }
    if h[3] != WIRE_VERSION {
        return Err(format!(
            "speaks wire version {}, this node version {WIRE_VERSION} (a node of another release?)",
            h[3]
        ));
    }
    Ok(u32::from_le_bytes(h[4..].try_into().expect("4 bytes")))
}

/// Exponential backoff with equal jitter: the n-th wait is half of min(cap, base * 2^n) plus
/// a random part of the other half, so that peers that lost a node together do not dial it
/// back in step.
#[derive(Debug)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    pub fn new(base_ms: u64, cap_ms: u64, rng: Rng) -> Backoff {
        Backoff {
            base_ms,
            cap_ms,
            attempt: 0,
            rng,
        }
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(30))
            .min(self.cap_ms);
        self.attempt += 1;
        let half = ceiling / 2;
        Duration::from_millis(half + self.rng.below(ceiling - half + 1))
    }
}

/// A connection's bytes: TCP, or TLS over TCP.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// An in-process endpoint: called on the node's task with every message sent to it.
pub type LocalEndpoint = Arc<dyn Fn(Msg) + Send + Sync>;

/// What the network hands the node (bounded: [`INBOX_MESSAGES`]).
pub type Inbox = mpsc::Sender<(NodeId, Msg)>;

/// A new inbox of [`INBOX_MESSAGES`].
pub fn inbox() -> (Inbox, mpsc::Receiver<(NodeId, Msg)>) {
    mpsc::channel(INBOX_MESSAGES)
}

/// The sending end of one peer's queue, registered under its connection's number.
struct Writer {
    conn: u64,
    tx: mpsc::Sender<Vec<u8>>,
    bytes: Arc<AtomicU64>,
}

/// What offering a frame to a queue came to.
enum Offer {
    Queued,
    Full,
    /// The connection ended: the frame is handed back, to dial again.
    Closed(Vec<u8>),
}

impl Writer {
    /// Queues `frame` unless that would put more than `max_bytes` or the channel's frames in
    /// the queue.
    fn offer(&self, frame: Vec<u8>, max_bytes: u64) -> Offer {
        let len = frame.len() as u64;
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > max_bytes {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            return Offer::Full;
        }
        let offer = match self.tx.try_send(frame) {
            Ok(()) => return Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(frame)) => Offer::Closed(frame),
        };
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        offer
    }
}

/// The receiving end of one peer's queue: frames in order; taking one frees its bytes.
struct Queued {
    rx: mpsc::Receiver<Vec<u8>>,
    bytes: Arc<AtomicU64>,
}

impl Queued {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        let frame = self.rx.recv().await?;
        self.bytes.fetch_sub(frame.len() as u64, Ordering::Relaxed);
        Some(frame)
    }

    /// Closes the queue (senders see it closed) and takes what was left in it.
    fn close_and_take(&mut self) -> Vec<Vec<u8>> {
        self.rx.close();
        let mut left = Vec::new();
        while let Ok(frame) = self.rx.try_recv() {
            left.push(frame);
        }
        left
    }
}

/// One connection (or dial) to a peer; its writer is registered under `id`.
#[derive(Clone, Copy, Debug)]
struct Conn {
    peer: NodeId,
    id: u64,
}

/// Writers to peers, by node id, and where to dial the ones not connected yet.
#[derive(Clone, Default)]
pub struct Peers {
    writers: Arc<Mutex<BTreeMap<NodeId, Writer>>>,
    /// Numbers connections, so that forgetting one never forgets a newer one.
    next_conn: Arc<AtomicU64>,
    /// Frames and bytes that may wait for one peer ([`QUEUE_FRAMES`], [`QUEUE_BYTES`]).
    pub queue_frames: usize,
    pub queue_bytes: u64,
    /// Frames dropped one at a time (a full queue, no address), for the log's rate limit.
    full_drops: Arc<AtomicU64>,
    unaddressed_drops: Arc<AtomicU64>,
    /// Where each peer listens, as `host:port`: a name is looked up at each dial (a container
    /// or pod that is not there yet does not resolve; when it is, it does).
    book: Arc<BTreeMap<NodeId, String>>,
    inbox: Option<Inbox>,
    /// Seeds the dialler's jitter.
    seed: u64,
    /// How long one connect may take.
    pub connect_timeout: Duration,
    /// Tests: every connect fails as to a host that does not answer (loopback cannot).
    #[cfg(test)]
    unreachable: bool,
    /// Connections closed because a peer sent bytes that did not decode.
    pub protocol_errors: Arc<AtomicU64>,
    /// Connects that failed (every try, the last one included).
    pub dial_failures: Arc<AtomicU64>,
    /// Frames the network gave up on, whatever the reason (see the module's map).
    pub frames_dropped: Arc<AtomicU64>,
    /// Messages handed back because the peer refused the connection.
    pub refused: Arc<AtomicU64>,
    /// Local injections refused because the node's inbox was full (an HTTP request answered
    /// 503, a refusal notice dropped).
    pub inbox_full: Arc<AtomicU64>,
    /// In-process endpoints (a node's HTTP front): messages to these ids go to the channel,
    /// never to a socket.
    locals: Arc<Mutex<BTreeMap<NodeId, LocalEndpoint>>>,
    /// Mutual TLS: every connection is TLS, peers are who their certificates say.
    #[cfg(not(madsim))]
    pub tls: Option<Arc<crate::tls::NodeTls>>,
    /// The access policy applied to every message received (with `tls`).
    #[cfg(not(madsim))]
    pub guard: Option<Arc<crate::tls::Guard>>,
}

/// The dialling side's TLS: the peer must hold the certificate for `to`'s name.
#[cfg(not(madsim))]
async fn secure_dialled(
    peers: &Peers,
    to: NodeId,
    tcp: TcpStream,
) -> std::io::Result<Box<dyn Stream>> {
    let Some(tls) = peers.tls.clone() else {
        return Ok(Box::new(tcp));
    };
    let name = tls
        .server_name(to)
        .ok_or_else(|| std::io::Error::other(format!("node {to} has no name in the cluster")))?;
    Ok(Box::new(tls.connector.connect(name, tcp).await?))
}

#[cfg(madsim)]
async fn secure_dialled(_: &Peers, _: NodeId, tcp: TcpStream) -> std::io::Result<Box<dyn Stream>> {
    Ok(Box::new(tcp))
}

/// The listening side's TLS: the handshake, and the certificate the peer presented.
#[cfg(not(madsim))]
async fn secure_accepted(
    peers: &Peers,
    tcp: TcpStream,
) -> std::io::Result<(
    Box<dyn Stream>,
    Option<rustls::pki_types::CertificateDer<'static>>,
)> {
    let Some(tls) = peers.tls.clone() else {
        return Ok((Box::new(tcp), None));
    };
    let conn = tls.acceptor.accept(tcp).await?;
    let cert = conn
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    Ok((Box::new(conn), cert))
}

/// The node a connection's certificate proves (None without TLS or without a certificate).
#[cfg(not(madsim))]
fn proven_peer(
    peers: &Peers,
    cert: &Option<rustls::pki_types::CertificateDer<'static>>,
    claimed: NodeId,
) -> Option<NodeId> {
    let (tls, cert) = (peers.tls.as_ref()?, cert.as_ref()?);
    tls.proven(cert, claimed)
}

/// Whether the policy lets `msg` through; refusals are counted by the guard.
#[cfg(not(madsim))]
fn admitted(peers: &Peers, proven: Option<NodeId>, claimed: NodeId, msg: &Msg) -> bool {
    match &peers.guard {
        None => true,
        Some(g) => g
            .admit(proven, claimed, minitwin_components::security::Family::of(msg))
            .map_err(|r| tracing::debug!(peer = claimed, ?proven, refusal = ?r, "refused by the access policy"))
            .is_ok(),
    }
}

#[cfg(madsim)]
fn admitted(_: &Peers, _: Option<NodeId>, _: NodeId, _: &Msg) -> bool {
    true
}

impl Peers {
    pub fn new(book: BTreeMap<NodeId, String>, inbox: Inbox, seed: u64) -> Peers {
        Peers {
            book: Arc::new(book),
            inbox: Some(inbox),
            seed,
            connect_timeout: CONNECT_TIMEOUT,
            queue_frames: QUEUE_FRAMES,
            queue_bytes: QUEUE_BYTES,
            ..Peers::default()
        }
    }

    /// Routes messages to `id` to `endpoint`, in this process.
    pub fn attach_local(&self, id: NodeId, endpoint: LocalEndpoint) {
        self.locals
            .lock()
            .expect("locals lock")
            .insert(id, endpoint);
    }

    /// Hands `msg` to the node as if `from` had sent it, or says why it cannot: the node
    /// stopped, or its inbox is full (the node is behind; the caller answers for it).
    pub fn inject(&self, from: NodeId, msg: Msg) -> Result<(), &'static str> {
        let inbox = self.inbox.as_ref().ok_or("the node is stopping")?;
        inbox.try_send((from, msg)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.inbox_full.fetch_add(1, Ordering::Relaxed);
                "the node is behind (its inbox is full)"
            }
            mpsc::error::TrySendError::Closed(_) => "the node is stopping",
        })
    }

    /// Queues `msg` for `to`, dialling it if it is in the address book and not connected.
    /// Returns false when the message is dropped (counted, as the network may drop it): `to`
    /// has no address, or its queue is full.
    pub fn send(&self, me: NodeId, to: NodeId, msg: &Msg) -> bool {
        let local = self.locals.lock().expect("locals lock").get(&to).cloned();
        if let Some(endpoint) = local {
            endpoint(msg.clone());
            return true;
        }
        let mut frame = Vec::new();
        if let Err(e) = codec::encode(msg, &mut frame) {
            tracing::error!(node = me, peer = to, error = %e, "cannot encode a message; dropped");
            return false;
        }
        let mut writers = self.writers.lock().expect("peers lock");
        if let Some(w) = writers.get(&to) {
            frame = match w.offer(frame, self.queue_bytes) {
                Offer::Queued => return true,
                Offer::Full => {
                    drop(writers);
                    self.dropped_one(
                        me,
                        to,
                        &self.full_drops,
                        "its queue is full (a slow or unreachable peer)",
                    );
                    return false;
                }
                Offer::Closed(frame) => {
                    writers.remove(&to);
                    frame
                }
            };
        }
        let Some(addr) = self.book.get(&to).cloned() else {
            drop(writers);
            self.dropped_one(
                me,
                to,
                &self.unaddressed_drops,
                "it has no address and no connection",
            );
            return false;
        };
        let conn = self.conn(to);
        let (writer, queued) = self.queue(conn);
        if !matches!(writer.offer(frame, self.queue_bytes), Offer::Queued) {
            drop(writers);
            self.dropped_one(
                me,
                to,
                &self.full_drops,
                "it is larger than a peer's whole queue",
            );
            return false;
        }
        writers.insert(to, writer);
        tokio::spawn(dial(me, conn, addr, queued, self.clone()));
        true
    }

    /// A fresh queue for `conn`.
    fn queue(&self, conn: Conn) -> (Writer, Queued) {
        let (tx, rx) = mpsc::channel(self.queue_frames.max(1));
        let bytes = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            conn: conn.id,
            tx,
            bytes: bytes.clone(),
        };
        (writer, Queued { rx, bytes })
    }

    /// A new connection number for `peer`.
    fn conn(&self, peer: NodeId) -> Conn {
        Conn {
            peer,
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn register(&self, conn: Conn, writer: Writer) {
        debug_assert_eq!(writer.conn, conn.id);
        self.writers
            .lock()
            .expect("peers lock")
            .insert(conn.peer, writer);
    }

    /// Forgets `conn`'s writer, if it is still the one registered for its peer.
    fn forget(&self, conn: Conn) {
        let mut writers = self.writers.lock().expect("peers lock");
        if writers.get(&conn.peer).is_some_and(|w| w.conn == conn.id) {
            writers.remove(&conn.peer);
        }
    }

    /// Counts one frame to `to` dropped for a reason that strikes one message at a time;
    /// warns on the first of that reason and then at every power of two (1, 2, 4, ...), so that
    /// a flood is seen without flooding the log.
    fn dropped_one(&self, me: NodeId, to: NodeId, of_reason: &AtomicU64, why: &str) {
        let total = self.frames_dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let n = of_reason.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(
                node = me,
                peer = to,
                of_this_reason = n,
                dropped_total = total,
                "frame dropped: {why}"
            );
        } else {
            tracing::debug!(
                node = me,
                peer = to,
                of_this_reason = n,
                dropped_total = total,
                "frame dropped: {why}"
            );
        }
    }
}

/// Closes the queue and counts what was still in it as dropped; returns how many.
fn drop_queued(queued: &mut Queued, peers: &Peers) -> u64 {
    let n = queued.close_and_take().len() as u64;
    peers.frames_dropped.fetch_add(n, Ordering::Relaxed);
    n
}

/// Connects to `addr` (tries with backoff and jitter), says hello, then writes frames from
/// `rx` and reads what the peer answers on the same connection.
async fn dial(me: NodeId, conn: Conn, addr: String, mut queued: Queued, peers: Peers) {
    let to = conn.peer;
    // A name that does not resolve is a peer that is not there: as a refused connect.
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => match tokio::net::lookup_host(addr.as_str())
            .await
            .map(|mut a| a.next())
        {
            Ok(Some(a)) => a,
            Ok(None) | Err(_) => {
                peers.forget(conn);
                let handed_back = refuse_queued(to, &mut queued, &peers);
                tracing::debug!(node = me, peer = to, %addr, handed_back, "peer's name does not resolve");
                return;
            }
        },
    };
    let rng = Rng::stream(peers.seed, &format!("dial {me}->{to}"));
    let mut backoff = Backoff::new(10, 2_000, rng);
    for attempt in 1..=DIAL_ATTEMPTS {
        let connect = async {
            #[cfg(test)]
            if peers.unreachable {
                return Err(std::io::Error::from(std::io::ErrorKind::HostUnreachable));
            }
            TcpStream::connect(addr).await
        };
        let error = match tokio::time::timeout(peers.connect_timeout, connect).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let secured =
                    tokio::time::timeout(HELLO_TIMEOUT, secure_dialled(&peers, to, stream)).await;
                let stream = match secured {
                    Ok(Ok(s)) => s,
                    failed => {
                        let e = failed.map_or_else(
                            |_| "timed out".to_string(),
                            |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                        );
                        peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
                        peers.forget(conn);
                        let dropped = drop_queued(&mut queued, &peers);
                        tracing::warn!(node = me, peer = to, %addr, error = %e, dropped, "TLS handshake failed; queued messages dropped");
                        return;
                    }
                };
                let (mut reader, writer) = tokio::io::split(stream);
                tokio::spawn(write_frames(me, conn, writer, queued, peers.clone()));
                // Answers may come back on this connection too, after the peer's hello.
                let mut h = [0u8; 8];
                if let Err(e) = reader.read_exact(&mut h).await {
                    tracing::warn!(node = me, peer = to, %addr, error = %e, "connection closed before the peer's hello");
                    peers.forget(conn);
                    return;
                }
                if let Err(why) = parse_hello(&h) {
                    tracing::warn!(node = me, peer = to, %addr, reason = %why, "protocol error; closing");
                    peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    peers.forget(conn);
                    return;
                }
                // The peer we dialled is who its certificate names (checked by the handshake).
                read_frames(me, reader, conn, Some(to), true, addr, peers).await;
                return;
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                peers.forget(conn);
                let handed_back = refuse_queued(to, &mut queued, &peers);
                tracing::debug!(node = me, peer = to, %addr, handed_back, "connection refused");
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer in {:?}", peers.connect_timeout),
        };
        peers.dial_failures.fetch_add(1, Ordering::Relaxed);
        let wait = backoff.next_delay();
        tracing::debug!(node = me, peer = to, %addr, attempt, error = %error, ?wait, "connect failed; trying again");
        tokio::time::sleep(wait).await;
    }
    peers.forget(conn);
    let dropped = drop_queued(&mut queued, &peers);
    tracing::warn!(node = me, peer = to, %addr, attempts = DIAL_ATTEMPTS, dropped, "peer unreachable; queued messages dropped, the next message dials again");
}

/// Hands every message queued for `to` back to the node as refused; returns how many.
fn refuse_queued(to: NodeId, queued: &mut Queued, peers: &Peers) -> u64 {
    let mut decoder = FrameDecoder::new();
    for frame in queued.close_and_take() {
        decoder.push(&frame);
    }
    let (mut n, mut lost) = (0, 0);
    while let Ok(Some(msg)) = decoder.next_msg() {
        match peers.inject(to, Msg::Refused(Box::new(msg))) {
            Ok(()) => n += 1,
            Err(_) => lost += 1,
        }
    }
    peers.refused.fetch_add(n, Ordering::Relaxed);
    // A node too far behind to hear that its messages were refused: they are dropped.
    peers.frames_dropped.fetch_add(lost, Ordering::Relaxed);
    n
}

/// Writes the hello, then every queued frame; a write that fails or takes longer than
/// [`WRITE_TIMEOUT`] ends the connection (the next message dials again), and the frame it was
/// writing and those still queued are counted as dropped.
async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    me: NodeId,
    conn: Conn,
    mut w: W,
    mut queued: Queued,
    peers: Peers,
) {
    let peer = conn.peer;
    let mut next = Some(hello(me).to_vec());
    let mut in_flight_frames = 0u64; // the hello is not a message
    while let Some(bytes) = next {
        let write = async {
            w.write_all(&bytes).await?;
            w.flush().await
        };
        let why = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {
                next = queued.recv().await;
                in_flight_frames = 1;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("the peer read nothing for {WRITE_TIMEOUT:?}"),
        };
        peers.forget(conn);
        peers
            .frames_dropped
            .fetch_add(in_flight_frames, Ordering::Relaxed);
        let dropped = in_flight_frames + drop_queued(&mut queued, &peers);
        if dropped > 0 {
            tracing::warn!(node = me, peer, error = %why, dropped, "write failed; connection closed, the frame in flight and those queued dropped");
        } else {
            tracing::debug!(node = me, peer, error = %why, "write failed; connection closed");
        }
        return;
    }
}

/// Accepts connections and feeds their messages to the node until the listener fails.
pub async fn serve(me: NodeId, listener: TcpListener, peers: Peers) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like pass: never stop accepting.
                tracing::warn!(node = me, error = %e, "accept failed; trying again in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(read_connection(me, stream, addr, peers.clone()));
    }
}

/// Reads a hello, then frames; registers the connection as the way back to that peer.
async fn read_connection(me: NodeId, stream: TcpStream, addr: SocketAddr, peers: Peers) {
    #[cfg(not(madsim))]
    let secured = tokio::time::timeout(HELLO_TIMEOUT, secure_accepted(&peers, stream))
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut)));
    #[cfg(not(madsim))]
    let (stream, cert) = match secured {
        Ok(x) => x,
        Err(e) => {
            // No certificate, or one our CA did not sign (another cluster): refused.
            tracing::warn!(node = me, %addr, error = %e, "TLS handshake refused");
            if let Some(g) = &peers.guard {
                g.refuse_handshake();
            }
            return;
        }
    };
    let (mut reader, writer) = tokio::io::split(stream);
    let mut h = [0u8; 8];
    match tokio::time::timeout(HELLO_TIMEOUT, reader.read_exact(&mut h)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => {
            tracing::warn!(node = me, %addr, timeout = ?HELLO_TIMEOUT, "no hello; closing");
            peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    let peer = match parse_hello(&h) {
        Ok(peer) => peer,
        Err(why) => {
            tracing::warn!(node = me, %addr, reason = %why, "protocol error; closing the connection");
            peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    #[cfg(not(madsim))]
    let proven = proven_peer(&peers, &cert, peer);
    #[cfg(madsim)]
    let proven = None;
    // Under mTLS a connection speaks for the node its certificate proves, never for the one
    // its hello claims: only a proven peer becomes the way back to that node (a claim that
    // its certificate does not back gets no traffic meant for the claimed node; its messages
    // meet the policy as anonymous, and its end resets nothing).
    #[cfg(not(madsim))]
    let trusted = peers.tls.is_none() || proven == Some(peer);
    #[cfg(madsim)]
    let trusted = true;
    let conn = peers.conn(peer);
    let (queue, queued) = peers.queue(conn);
    tokio::spawn(write_frames(me, conn, writer, queued, peers.clone()));
    if trusted {
        peers.register(conn, queue);
    }
    read_frames(me, reader, conn, proven, trusted, addr, peers).await;
}

/// Decodes frames from `reader` and hands them to the node as `peer`'s messages, those the
/// access policy admits from a sender whose certificate proved `proven`.
async fn read_frames<R: tokio::io::AsyncRead + Unpin>(
    me: NodeId,
    mut reader: R,
    conn: Conn,
    proven: Option<NodeId>,
    trusted: bool,
    addr: SocketAddr,
    peers: Peers,
) {
    let Some(inbox) = peers.inbox.clone() else {
        return;
    };
    let peer = conn.peer;
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // The peer's process died or closed the connection: whatever was in flight
                // to it has failed.
                if trusted {
                    let _ = inbox.send((peer, Msg::Reset)).await;
                    peers.forget(conn);
                }
                return;
            }
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_msg() {
                Ok(Some(msg)) => {
                    if !admitted(&peers, proven, peer, &msg) {
                        continue;
                    }
                    // Waits while the node is behind: this connection stops reading.
                    if inbox.send((peer, msg)).await.is_err() {
                        return; // the node stopped
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(node = me, peer, %addr, reason = %e, "bad frame; closing the connection");
                    peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    if trusted {
                        peers.forget(conn);
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;
    use minitwin_components::msg::{Request, Route};

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(10, 2_000, Rng::stream(1, "b"));
        let delays: Vec<u64> = (0..12).map(|_| b.next_delay().as_millis() as u64).collect();
        for (n, &d) in delays.iter().enumerate() {
            let ceiling = (10u64 << n).min(2_000);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "wait {n}: {d} ms, ceiling {ceiling}"
            );
        }
        let mut other = Backoff::new(10, 2_000, Rng::stream(2, "b"));
        let others: Vec<u64> = (0..12)
            .map(|_| other.next_delay().as_millis() as u64)
            .collect();
        assert_ne!(delays, others, "two dialers do not retry in step");
    }

    #[test]
    fn a_hello_of_another_wire_version_is_refused_naming_both() {
        let mut h = hello(7);
        assert_eq!(parse_hello(&h), Ok(7));
        h[3] = WIRE_VERSION + 1;
        let why = parse_hello(&h).unwrap_err();
        assert!(
            why.contains(&format!("wire version {}", WIRE_VERSION + 1)),
            "{why}"
        );
        assert!(parse_hello(b"GET / HT")
            .unwrap_err()
            .contains("no minitwin hello"));
    }

    fn request() -> Msg {
        Msg::Request(Request {
            id: 1,
            route: Route::Read,
            key: 5,
            value: 0,
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_refused_connect_hands_the_message_back_and_the_next_send_dials_again() {
        runtime().block_on(async {
            // A free port, closed again: nothing listens there yet.
            let addr = TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap();
            let (tx, mut back) = inbox();
            let sender = Peers::new(BTreeMap::from([(2, addr.to_string())]), tx, 1);
            assert!(sender.send(1, 2, &request()));
            let got = tokio::time::timeout(Duration::from_secs(5), back.recv())
                .await
                .expect("handed back");
            assert_eq!(got, Some((2, Msg::Refused(Box::new(request())))));
            assert_eq!(sender.refused.load(Ordering::Relaxed), 1);
            let listener = TcpListener::bind(addr).await.unwrap();
            let (inbox_tx, mut inbox_rx) = inbox();
            tokio::spawn(serve(2, listener, Peers::new(BTreeMap::new(), inbox_tx, 2)));
            assert!(sender.send(1, 2, &request()));
            let got = tokio::time::timeout(Duration::from_secs(5), inbox_rx.recv())
                .await
                .expect("delivered once the peer listens");
            assert_eq!(got, Some((1, request())));
        });
    }

    #[test]
    fn messages_to_a_peer_that_never_answers_are_retried_with_backoff_then_dropped_and_counted() {
        runtime().block_on(async {
            let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let (tx, _rx) = inbox();
            let mut sender = Peers::new(BTreeMap::from([(2, addr.to_string())]), tx, 1);
            sender.unreachable = true;
            assert!(sender.send(1, 2, &request()));
            assert!(sender.send(1, 2, &request()));
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if sender.frames_dropped.load(Ordering::Relaxed) > 0 {
                    break;
                }
            }
            assert_eq!(
                sender.dial_failures.load(Ordering::Relaxed),
                u64::from(DIAL_ATTEMPTS)
            );
            assert_eq!(sender.frames_dropped.load(Ordering::Relaxed), 2);
            assert_eq!(sender.refused.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn a_full_queue_drops_and_counts_new_messages_instead_of_growing() {
        runtime().block_on(async {
            let (tx, _rx) = inbox();
            let mut sender = Peers::new(BTreeMap::from([(2, "127.0.0.1:9".to_string())]), tx, 1);
            sender.unreachable = true;
            sender.queue_frames = 3;
            let sent: Vec<bool> = (0..5).map(|_| sender.send(1, 2, &request())).collect();
            assert_eq!(sent, [true, true, true, false, false]);
            assert_eq!(sender.frames_dropped.load(Ordering::Relaxed), 2);
        });
    }

    #[test]
    fn a_queue_full_of_bytes_drops_and_counts_new_messages_too() {
        runtime().block_on(async {
            let (tx, _rx) = inbox();
            let mut sender = Peers::new(BTreeMap::from([(2, "127.0.0.1:9".to_string())]), tx, 1);
            sender.unreachable = true;
            let mut frame = Vec::new();
            codec::encode(&request(), &mut frame).unwrap();
            sender.queue_bytes = 2 * frame.len() as u64 + 1;
            let sent: Vec<bool> = (0..4).map(|_| sender.send(1, 2, &request())).collect();
            assert_eq!(sent, [true, true, false, false]);
            assert_eq!(sender.frames_dropped.load(Ordering::Relaxed), 2);
        });
    }

    #[test]
    fn a_local_message_to_a_full_inbox_is_refused_with_why_and_counted() {
        let (tx, rx) = mpsc::channel(1);
        let peers = Peers::new(BTreeMap::new(), tx, 1);
        assert_eq!(peers.inject(9, request()), Ok(()));
        let refused = peers.inject(9, request()).unwrap_err();
        assert!(refused.contains("inbox is full"), "{refused}");
        assert_eq!(peers.inbox_full.load(Ordering::Relaxed), 1);
        drop(rx);
        assert_eq!(peers.inject(9, request()), Err("the node is stopping"));
    }

    #[test]
    fn a_node_that_falls_behind_stops_reading_and_loses_nothing_when_it_catches_up() {
        runtime().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (inbox_tx, mut inbox_rx) = mpsc::channel(4);
            tokio::spawn(serve(2, listener, Peers::new(BTreeMap::new(), inbox_tx, 2)));
            let (tx, _rx) = inbox();
            let sender = Peers::new(BTreeMap::from([(2, addr.to_string())]), tx, 1);
            let n = 2_000;
            for _ in 0..n {
                assert!(sender.send(1, 2, &request()));
            }
            // The node handles nothing for a while: its inbox holds 4, the rest waits unread.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(inbox_rx.len(), 4);
            for i in 0..n {
                let got = tokio::time::timeout(Duration::from_secs(5), inbox_rx.recv()).await;
                assert_eq!(got, Ok(Some((1, request()))), "message {i}");
            }
            assert_eq!(sender.frames_dropped.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn a_message_to_a_peer_with_no_address_and_no_connection_is_dropped_and_counted() {
        runtime().block_on(async {
            let (tx, _rx) = inbox();
            let sender = Peers::new(BTreeMap::new(), tx, 1);
            assert!(!sender.send(1, 7, &request()));
            assert_eq!(sender.frames_dropped.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn the_end_of_an_old_connection_forgets_only_itself_never_a_newer_one() {
        let (tx, _rx) = inbox();
        let peers = Peers::new(BTreeMap::new(), tx, 1);
        let (old, new) = (peers.conn(2), peers.conn(2));
        let (old_tx, _old_rx) = peers.queue(old);
        let (new_tx, mut new_rx) = peers.queue(new);
        peers.register(old, old_tx);
        peers.register(new, new_tx);
        peers.forget(old);
        runtime().block_on(async {
            assert!(peers.send(1, 2, &request()), "still the newer connection's");
            assert!(new_rx.recv().await.is_some());
        });
        peers.forget(new);
        assert!(peers.writers.lock().unwrap().is_empty());
    }
}
