/*!
Zero-copy decoding of captured frames, and of the few application-layer facts that tell
which service a flow is for.

This crate turns one captured frame (the bytes as a capture file or a live interface
handed them over, possibly cut by a snap length) into a small [`Packet`] view: source and
destination address, upper-layer protocol, outer VLAN, ports, TCP sequence number and
flags, and the captured payload, borrowed from the frame. It is built for the hot path
of a traffic monitor: it does not allocate per packet (only the fragment reassembler
does, and it reuses its buffers), does not build strings, and never panics on any
input.

Three pure functions then read what a monitor needs from payloads:

* [`dns::parse_response`]: the question, the CNAME chain and the final addresses of a DNS
  response;
* [`tls::client_hello_sni`]: the server name of a TLS ClientHello, with a way to ask for
  more bytes when the hello spans segments;
* [`http::request_host`]: the Host header of an HTTP/1.x request.

# What it decodes

| layer | formats |
|---|---|
| link | Ethernet II with 802.1Q / 802.1ad / QinQ tags (up to [`MAX_VLAN_DEPTH`]), Linux cooked v1 (SLL) and v2 (SLL2), BSD null and OpenBSD loop, raw IP (LINKTYPE 101, 228, 229; DLT 12 and 14) |
| network | IPv4 (options skipped), IPv6 with hop-by-hop, routing, destination options, fragment and AH headers (up to [`MAX_IPV6_EXT_HEADERS`]); fragments of both reassembled |
| transport | TCP, UDP; any other protocol is reported by number without ports |

A frame that yields no packet gives a [`Skip`], whose [`label`](Skip::label) is a stable
reason for counters and whose [`is_malformed`](Skip::is_malformed) tells a frame that is
merely not for us (ARP, an LLC frame, a fragment held for reassembly) from one that
contradicts its own headers.

Lengths follow two rules. The capture may cut a packet short: payloads are clamped to
what was captured and that is never an error. A frame may also be longer than its IP
packet (Ethernet pads short frames to 60 bytes): payloads are trimmed to the IP and UDP
length fields.

# Example

```
use linkward_decode::{Decoder, DecoderConfig, LinkType, Transport};

// An Ethernet frame: IPv4 10.0.0.1 -> 10.0.0.2, UDP 5353 -> 53, payload "hi",
// padded to 60 bytes by the sender's network card.
let mut frame = vec![
    0x02, 0, 0, 0, 0, 2,  0x02, 0, 0, 0, 0, 1,  0x08, 0x00,
    0x45, 0, 0, 30,  0, 0, 0x40, 0,  64, 17, 0, 0,  10, 0, 0, 1,  10, 0, 0, 2,
    0x14, 0xe9, 0, 53,  0, 10, 0, 0,  b'h', b'i',
];
frame.resize(60, 0);

let mut decoder = Decoder::new(DecoderConfig::default());
let packet = decoder.decode(LinkType::from_linktype(1), &frame, 0)?;
assert_eq!(packet.src.to_string(), "10.0.0.1");
assert_eq!(packet.protocol, 17);
assert_eq!(packet.ip_len, 30);
assert_eq!(
    packet.transport,
    Transport::Udp { src_port: 5353, dst_port: 53, payload: b"hi" },
);
# Ok::<(), linkward_decode::Skip>(())
```

# What it does not do

* It reads no capture files: give it frames and their link type.
* It does not follow tunnels (GRE, VXLAN, Geneve, Teredo, IP in IP): the outer packet is
  reported, with the tunnel's protocol or UDP port.
* It does not verify checksums: captures taken on the sending host carry checksums the
  network card fills in later, so a bad checksum says little.
* It does not reassemble TCP streams; [`tls::SniResult::Incomplete`] tells a caller how
  many bytes to gather when a ClientHello spans segments, and DNS over TCP is read from
  one segment ([`dns::parse_tcp_stream_message`]).
* It does not decode ICMP, nor the packets quoted inside ICMP errors.
*/
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bytes;
mod decoder;
pub mod dns;
pub mod http;
mod ip;
mod link;
mod packet;
mod reassembly;
mod skip;
pub mod tls;

pub use decoder::{Decoder, DecoderConfig, FragmentStats, decode_stateless};
pub use link::LinkType;
pub use packet::{Packet, TcpFlags, Transport};
pub use skip::Skip;

/// Stacked VLAN tags followed before a frame is reported as [`Skip::VlanTooDeep`]. Real
/// networks use one or two; the limit only bounds the work a crafted frame can cause.
pub const MAX_VLAN_DEPTH: usize = 8;

/// IPv6 extension headers followed before a packet is reported as
/// [`Skip::TooManyIpv6Ext`]. RFC 8200 orders at most about six; the limit bounds the work
/// a crafted packet can cause.
pub const MAX_IPV6_EXT_HEADERS: usize = 16;
