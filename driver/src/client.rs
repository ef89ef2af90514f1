//! A client of a node: says hello as a given node id, sends messages, awaits answers.

use crate::net::{hello, parse_hello, Stream, CONNECT_TIMEOUT};
use minitwin_components::codec::{self, FrameDecoder};
use minitwin_components::{Msg, NodeId};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Client {
    stream: Box<dyn Stream>,
    decoder: FrameDecoder,
    peer: SocketAddr,
}

impl Client {
    /// Connects to the node at `addr`, introducing itself as node `me`; the node says hello back.
    pub async fn connect(addr: SocketAddr, me: NodeId) -> io::Result<Client> {
        let tcp = Client::tcp(addr).await?;
        Client::handshake(Box::new(tcp), addr, me).await
    }

    /// Connects over mutual TLS with `tls`'s certificate to node `server` at `addr`.
    #[cfg(not(madsim))]
    pub async fn connect_tls(
        addr: SocketAddr,
        me: NodeId,
        tls: &crate::tls::NodeTls,
        server: NodeId,
    ) -> io::Result<Client> {
        let tcp = Client::tcp(addr).await?;
        let name = tls
            .server_name(server)
            .ok_or_else(|| io::Error::other(format!("node {server} has no name")))?;
        let stream = tls.connector.connect(name, tcp).await?;
        Client::handshake(Box::new(stream), addr, me).await
    }

    async fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} did not accept a connection in {CONNECT_TIMEOUT:?}"),
                ))
            }
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn handshake(
        mut stream: Box<dyn Stream>,
        addr: SocketAddr,
        me: NodeId,
    ) -> io::Result<Client> {
        stream.write_all(&hello(me)).await?;
        stream.flush().await?;
        let mut answer = [0u8; 8];
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer)).await;
        match read {
            Ok(Ok(_)) => {
                if let Err(why) = parse_hello(&answer) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{addr} {why}"),
                    ));
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} sent no hello"),
                ))
            }
        }
        Ok(Client {
            stream,
            decoder: FrameDecoder::new(),
            peer: addr,
        })
    }

    /// Sends raw bytes (for tests of bad input).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub async fn send(&mut self, msg: &Msg) -> io::Result<()> {
        let mut frame = Vec::new();
        codec::encode(msg, &mut frame).map_err(io::Error::other)?;
        self.stream.write_all(&frame).await?;
        self.stream.flush().await
    }

    /// The next message from the node, or an error after `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> io::Result<Msg> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(msg) = self.decoder.next_msg().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("node at {}: {e}", self.peer),
                )
            })? {
                return Ok(msg);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let read = tokio::time::timeout(left, self.stream.read(&mut buf)).await;
            match read {
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer from {} in {timeout:?}", self.peer),
                    ))
                }
                Ok(Ok(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} closed the connection", self.peer),
                    ))
                }
                Ok(Ok(n)) => self.decoder.push(&buf[..n]),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Sends `msg` and awaits the answer.
    pub async fn call(&mut self, msg: &Msg, timeout: Duration) -> io::Result<Msg> {
        self.send(msg).await?;
        self.recv(timeout).await
    }
}
