//! Frame builders shared by the integration tests. IP, TCP and UDP headers are written by
//! smoltcp's `emit`, so the decoder is checked against an independent encoder; link
//! headers, extension headers and fragments are assembled by hand.

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket,
    TcpRepr, TcpSeqNumber as SeqNumber, UdpPacket, UdpRepr,
};

pub const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// A UDP header and payload (checksum over the given addresses).
pub fn udp(src: IpAddress, dst: IpAddress, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + payload.len()];
    UdpRepr {
        src_port: sport,
        dst_port: dport,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut buf[..]),
        &src,
        &dst,
        payload.len(),
        |p| p.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// A TCP header (20 bytes, or 24 with an MSS option on SYN) and payload.
pub fn tcp(
    src: IpAddress,
    dst: IpAddress,
    sport: u16,
    dport: u16,
    seq: u32,
    control: TcpControl,
    payload: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control,
        seq_number: SeqNumber(seq as i32),
        ack_number: None,
        window_len: 1024,
        window_scale: None,
        max_seg_size: (control == TcpControl::Syn).then_some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf[..]),
        &src,
        &dst,
        &ChecksumCapabilities::default(),
    );
    buf
}

pub fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv4(
        IpProtocol::Udp,
        &udp(A4.into(), B4.into(), sport, dport, payload),
    )
}

pub fn tcp4(sport: u16, dport: u16, seq: u32, control: TcpControl, payload: &[u8]) -> Vec<u8> {
    ipv4(
        IpProtocol::Tcp,
        &tcp(A4.into(), B4.into(), sport, dport, seq, control, payload),
    )
}

/// An IPv4 packet from A4 to B4 (DF set, id 0) around `payload`.
pub fn ipv4(protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: A4,
        dst_addr: B4,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; 20 + payload.len()];
    repr.emit(
        &mut Ipv4Packet::new_unchecked(&mut buf[..]),
        &ChecksumCapabilities::default(),
    );
    buf[20..].copy_from_slice(payload);
    buf
}

/// IPv4 fragments of `payload` (a transport header and data) with id `id`, cut at the
/// given byte offsets (multiples of 8).
pub fn ipv4_fragments(
    protocol: IpProtocol,
    id: u16,
    payload: &[u8],
    cuts: &[usize],
) -> Vec<Vec<u8>> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0], w[1]);
            let mut p = ipv4(protocol, &payload[start..end]);
            let mut v = Ipv4Packet::new_unchecked(&mut p[..]);
            v.set_ident(id);
            v.clear_flags();
            v.set_more_frags(end != payload.len());
            v.set_frag_offset(start as u16);
            v.fill_checksum();
            p
        })
        .collect()
}

/// An IPv6 packet from A6 to B6: `next_header` starts the chain, `rest` holds any
/// extension headers followed by the upper-layer bytes.
pub fn ipv6(next_header: u8, rest: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: A6,
        dst_addr: B6,
        next_header: IpProtocol::from(next_header),
        payload_len: rest.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; 40 + rest.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    buf[40..].copy_from_slice(rest);
    buf
}

/// A generic extension header (hop-by-hop, routing, destination options) of 8 bytes,
/// padded with a PadN option.
pub fn ext8(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header.
pub fn frag6(next: u8, offset: usize, more: bool, id: u32) -> Vec<u8> {
    let word = (offset as u16 & 0xfff8) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&word.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// An Ethernet II frame with the given VLAN tags (TPID, VLAN id), outermost first.
pub fn ethernet(ethertype: u16, tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A Linux cooked v1 frame (outgoing packet, Ethernet hardware type).
pub fn sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 4, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A Linux cooked v2 frame.
pub fn sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = protocol.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 0x02, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A TLS 1.2 ClientHello record naming `host`, with one cipher suite and a second
/// extension after the SNI.
pub fn client_hello(host: &str) -> Vec<u8> {
    let host = host.as_bytes();
    let n = host.len() as u16;
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(n + 5).to_be_bytes());
    ext.extend_from_slice(&(n + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&n.to_be_bytes());
    ext.extend_from_slice(host);
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]);

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2f, 0x01, 0x00]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);

    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);

    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}
