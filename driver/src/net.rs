//! TCP between nodes. Every connection opens with a hello (magic `MTW1`, then the sender's
//! node id as a little-endian u32) and then carries `components::codec` frames both ways: a node
//! answers a peer over the connection the peer opened, so clients need no address of their own.
//! Bytes that do not decode close that connection, with an error naming the peer; the node
//! keeps serving everyone else.

use minitwin_components::codec::{self, FrameDecoder};
use minitwin_components::{Msg, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub const MAGIC: &[u8; 4] = b"MTW1";

/// What the network hands the node.
pub type Inbox = mpsc::UnboundedSender<(NodeId, Msg)>;

/// Writers to peers, by node id, and where to dial the ones not connected yet.
#[derive(Clone, Default)]
pub struct Peers {
    writers: Arc<Mutex<BTreeMap<NodeId, mpsc::UnboundedSender<Vec<u8>>>>>,
    book: Arc<BTreeMap<NodeId, SocketAddr>>,
    inbox: Option<Inbox>,
    /// Connections closed because a peer sent bytes that did not decode.
    pub protocol_errors: Arc<AtomicU64>,
}

impl Peers {
    pub fn new(book: BTreeMap<NodeId, SocketAddr>, inbox: Inbox) -> Peers {
        Peers {
            book: Arc::new(book),
            inbox: Some(inbox),
            ..Peers::default()
        }
    }

    /// Queues `msg` for `to`, dialling it if it is in the address book and not connected.
    /// Returns false when `to` cannot be reached (the message is dropped, as the network may).
    pub fn send(&self, me: NodeId, to: NodeId, msg: &Msg) -> bool {
        let mut frame = Vec::new();
        if let Err(e) = codec::encode(msg, &mut frame) {
            eprintln!("minitwin-driver: node {me}: cannot send to {to}: {e}");
            return false;
        }
        let mut writers = self.writers.lock().expect("peers lock");
        if let Some(w) = writers.get(&to) {
            if w.send(frame.clone()).is_ok() {
                return true;
            }
            writers.remove(&to);
        }
        let Some(&addr) = self.book.get(&to) else {
            return false;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(frame).expect("fresh channel");
        writers.insert(to, tx);
        tokio::spawn(dial(me, to, addr, rx, self.clone()));
        true
    }

    fn register(&self, peer: NodeId, tx: mpsc::UnboundedSender<Vec<u8>>) {
        self.writers.lock().expect("peers lock").insert(peer, tx);
    }

    fn forget(&self, peer: NodeId) {
        self.writers.lock().expect("peers lock").remove(&peer);
    }
}

/// Connects to `addr` (a few tries with backoff), says hello, then writes frames from `rx`.
async fn dial(
    me: NodeId,
    to: NodeId,
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    peers: Peers,
) {
    let mut backoff_ms = 10;
    for _ in 0..6 {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let (mut reader, writer) = tokio::io::split(stream);
                tokio::spawn(write_frames(me, writer, rx));
                // Answers may come back on this connection too, after the peer's hello.
                let mut hello = [0u8; 8];
                if reader.read_exact(&mut hello).await.is_err() || &hello[..4] != MAGIC {
                    eprintln!("minitwin-driver: node {me}: node {to} at {addr} sent no minitwin hello; closing");
                    peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    peers.forget(to);
                    return;
                }
                read_frames(me, reader, to, addr, peers).await;
                return;
            }
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(backoff_ms)).await;
                backoff_ms *= 2;
            }
        }
    }
    eprintln!("minitwin-driver: node {me}: cannot connect to node {to} at {addr}");
    peers.forget(to);
}

async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    me: NodeId,
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&me.to_le_bytes());
    if w.write_all(&hello).await.is_err() || w.flush().await.is_err() {
        return;
    }
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
}

/// Accepts connections and feeds their messages to the node until the listener fails.
pub async fn serve(me: NodeId, listener: TcpListener, peers: Peers) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(read_connection(me, stream, addr, peers.clone()));
    }
}

/// Reads a hello, then frames; registers the connection as the way back to that peer.
async fn read_connection(me: NodeId, stream: TcpStream, addr: SocketAddr, peers: Peers) {
    let (mut reader, writer) = tokio::io::split(stream);
    let mut hello = [0u8; 8];
    if reader.read_exact(&mut hello).await.is_err() {
        return;
    }
    if &hello[..4] != MAGIC {
        eprintln!(
            "minitwin-driver: node {me}: peer {addr} sent no minitwin hello (got {:?}); closing",
            &hello[..4]
        );
        peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let peer = u32::from_le_bytes(hello[4..].try_into().expect("4 bytes"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_frames(me, writer, rx));
    peers.register(peer, tx);
    read_frames(me, reader, peer, addr, peers).await;
}

/// Decodes frames from `reader` and hands them to the node as `peer`'s messages.
async fn read_frames<R: tokio::io::AsyncRead + Unpin>(
    me: NodeId,
    mut reader: R,
    peer: NodeId,
    addr: SocketAddr,
    peers: Peers,
) {
    let Some(inbox) = peers.inbox.clone() else {
        return;
    };
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_msg() {
                Ok(Some(msg)) => {
                    if inbox.send((peer, msg)).is_err() {
                        return; // the node stopped
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("minitwin-driver: node {me}: peer {addr} (node {peer}) sent a bad frame: {e}; closing the connection");
                    peers.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    peers.forget(peer);
                    return;
                }
            }
        }
    }
    peers.forget(peer);
}
