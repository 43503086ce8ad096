//! Whole conversations as timed frames: a TCP session from handshake to close, and a
//! DNS lookup with its answer.

use crate::error::SynthError;
use crate::frame::{Frame, FrameBuilder, Link, tcp_flags};
use crate::payload::{TYPE_A, TYPE_AAAA, dns_query, dns_response};
use std::net::{IpAddr, SocketAddr};

/// How a [`Conversation`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// The client sends FIN, the server answers FIN, the client acknowledges it.
    Fin,
    /// The client resets the connection after the reply, as browsers often do.
    Reset,
    /// No close: the capture ends while the connection is open.
    Open,
}

/// A TCP conversation between a client and a server.
///
/// [`frames`](Conversation::frames) lays it out as a capture would show it: the
/// three-way handshake, the client's request (one segment per element of `request`, so
/// a ClientHello can be split), the server's acknowledgment, its reply cut into
/// MSS-sized segments, the client's acknowledgment, then the close. Frames are
/// `step_ns` apart from `start_ns` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The link layer of every frame.
    pub link: Link,
    /// The side that opens the connection.
    pub client: SocketAddr,
    /// The side that accepts it.
    pub server: SocketAddr,
    /// The client's data, one TCP segment per element; empty segments are left out.
    pub request: Vec<Vec<u8>>,
    /// The server's data, cut into segments of at most `mss` bytes.
    pub reply: Vec<u8>,
    /// Time of the first frame, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Time between consecutive frames.
    pub step_ns: u64,
    /// Largest server segment.
    pub mss: usize,
    /// How the conversation ends.
    pub close: Close,
    /// The client's initial sequence number.
    pub client_isn: u32,
    /// The server's initial sequence number.
    pub server_isn: u32,
}

impl Conversation {
    /// A conversation without data, closed with FIN, starting at time 0 with frames 1 ms
    /// apart.
    pub fn new(link: Link, client: SocketAddr, server: SocketAddr) -> Conversation {
        Conversation {
            link,
            client,
            server,
            request: Vec::new(),
            reply: Vec::new(),
            start_ns: 0,
            step_ns: 1_000_000,
            mss: 1460,
            close: Close::Fin,
            client_isn: 0x1000_0000,
            server_isn: 0x7000_0000,
        }
    }

    /// The client's request, sent as one segment.
    pub fn request(mut self, data: &[u8]) -> Conversation {
        self.request = vec![data.to_vec()];
        self
    }

    /// The client's request, one segment per element.
    pub fn request_segments(mut self, segments: Vec<Vec<u8>>) -> Conversation {
        self.request = segments;
        self
    }

    /// The server's reply.
    pub fn reply(mut self, data: &[u8]) -> Conversation {
        self.reply = data.to_vec();
        self
    }

    /// Time of the first frame.
    pub fn start_ns(mut self, t: u64) -> Conversation {
        self.start_ns = t;
        self
    }

    /// Time between frames.
    pub fn step_ns(mut self, step: u64) -> Conversation {
        self.step_ns = step;
        self
    }

    /// How the conversation ends.
    pub fn close(mut self, close: Close) -> Conversation {
        self.close = close;
        self
    }

    /// The frames of the conversation, in capture order.
    pub fn frames(&self) -> Result<Vec<Frame>, SynthError> {
        use tcp_flags::{ACK, FIN, PSH, RST, SYN};
        let b = FrameBuilder::new(self.link);
        let (c, s) = (self.client, self.server);
        let mut c_seq = self.client_isn;
        let mut s_seq = self.server_isn;
        let mut frames = Vec::new();
        let mut t = self.start_ns;
        let mut push = |data: Vec<u8>| {
            frames.push(Frame {
                ts_ns: t,
                link: self.link,
                data,
            });
            t = t.saturating_add(self.step_ns);
        };
        push(b.tcp(c, s, c_seq, 0, SYN, &[])?);
        c_seq = c_seq.wrapping_add(1);
        push(b.tcp(s, c, s_seq, c_seq, SYN | ACK, &[])?);
        s_seq = s_seq.wrapping_add(1);
        push(b.tcp(c, s, c_seq, s_seq, ACK, &[])?);
        let mut sent_request = false;
        for segment in self.request.iter().filter(|s| !s.is_empty()) {
            push(b.tcp(c, s, c_seq, s_seq, PSH | ACK, segment)?);
            c_seq = c_seq.wrapping_add(segment.len() as u32);
            sent_request = true;
        }
        if sent_request {
            push(b.tcp(s, c, s_seq, c_seq, ACK, &[])?);
        }
        let mss = self.mss.max(1);
        let segments = self.reply.chunks(mss);
        let last = segments.len();
        for (i, segment) in self.reply.chunks(mss).enumerate() {
            let flags = if i + 1 == last { PSH | ACK } else { ACK };
            push(b.tcp(s, c, s_seq, c_seq, flags, segment)?);
            s_seq = s_seq.wrapping_add(segment.len() as u32);
        }
        if !self.reply.is_empty() {
            push(b.tcp(c, s, c_seq, s_seq, ACK, &[])?);
        }
        match self.close {
            Close::Fin => {
                push(b.tcp(c, s, c_seq, s_seq, FIN | ACK, &[])?);
                c_seq = c_seq.wrapping_add(1);
                push(b.tcp(s, c, s_seq, c_seq, FIN | ACK, &[])?);
                s_seq = s_seq.wrapping_add(1);
                push(b.tcp(c, s, c_seq, s_seq, ACK, &[])?);
            }
            Close::Reset => push(b.tcp(c, s, c_seq, s_seq, RST | ACK, &[])?),
            Close::Open => {}
        }
        Ok(frames)
    }
}

/// A TCP session in which the client sends `client_payload` in one segment and the
/// server answers with 2 KiB, closed with FIN, frames 1 ms apart from `t0_ns`.
pub fn tcp_session(
    link: Link,
    client: SocketAddr,
    server: SocketAddr,
    client_payload: &[u8],
    t0_ns: u64,
) -> Result<Vec<Frame>, SynthError> {
    let reply: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    Conversation::new(link, client, server)
        .request(client_payload)
        .reply(&reply)
        .start_ns(t0_ns)
        .frames()
}

/// A DNS lookup over UDP: the client's query for `query` and, 2 ms later, the
/// resolver's answer through `chain` to `addrs` with `ttl`. The query asks for AAAA
/// when every address is IPv6, A otherwise; the message id comes from the client port.
#[allow(clippy::too_many_arguments)]
pub fn dns_exchange(
    link: Link,
    client: SocketAddr,
    resolver: SocketAddr,
    query: &str,
    chain: &[&str],
    addrs: &[IpAddr],
    ttl: u32,
    t0_ns: u64,
) -> Result<Vec<Frame>, SynthError> {
    let b = FrameBuilder::new(link);
    let id = client.port().rotate_left(5) ^ 0x5a5a;
    let qtype = if !addrs.is_empty() && addrs.iter().all(IpAddr::is_ipv6) {
        TYPE_AAAA
    } else {
        TYPE_A
    };
    let question = b.udp(client, resolver, &dns_query(id, query, qtype)?)?;
    let answer = b.udp(
        resolver,
        client,
        &dns_response(id, query, chain, addrs, ttl)?,
    )?;
    Ok(vec![
        Frame {
            ts_ns: t0_ns,
            link,
            data: question,
        },
        Frame {
            ts_ns: t0_ns.saturating_add(2_000_000),
            link,
            data: answer,
        },
    ])
}
