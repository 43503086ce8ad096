//! Builders for hand-made capture bytes: the variants the crate's writers do
//! not produce (big-endian files, several sections, obsolete and simple
//! packet blocks, odd timestamp resolutions, broken framing).

#![allow(dead_code)]

/// Appends `value` in the chosen byte order.
pub fn put_u32(out: &mut Vec<u8>, value: u32, be: bool) {
    out.extend_from_slice(&if be {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

pub fn put_u16(out: &mut Vec<u8>, value: u16, be: bool) {
    out.extend_from_slice(&if be {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

/// A classic pcap file header.
pub fn pcap_header(nanos: bool, be: bool, snaplen: u32, link_type: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
    put_u16(&mut out, 2, be);
    put_u16(&mut out, 4, be);
    put_u32(&mut out, 0, be);
    put_u32(&mut out, 0, be);
    put_u32(&mut out, snaplen, be);
    put_u32(&mut out, link_type, be);
    out
}

/// A classic pcap record.
pub fn pcap_record(out: &mut Vec<u8>, be: bool, sec: u32, frac: u32, data: &[u8], orig_len: u32) {
    put_u32(out, sec, be);
    put_u32(out, frac, be);
    put_u32(out, data.len() as u32, be);
    put_u32(out, orig_len, be);
    out.extend_from_slice(data);
}

/// A pcapng block: type, length, body padded to 4 bytes, length.
pub fn ng_block(block_type: u32, body: &[u8], be: bool) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    let mut out = Vec::new();
    put_u32(&mut out, block_type, be);
    put_u32(&mut out, len, be);
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    put_u32(&mut out, len, be);
    out
}

/// A section header block, version 1.0, unknown section length.
pub fn shb(be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, 0x1A2B_3C4D, be);
    put_u16(&mut body, 1, be);
    put_u16(&mut body, 0, be);
    body.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(0x0A0D_0D0A, &body, be)
}

/// An interface description block; `tsresol` and `tsoffset` become
/// options when given.
pub fn idb(
    link_type: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: Option<i64>,
    be: bool,
) -> Vec<u8> {
    let mut body = Vec::new();
    put_u16(&mut body, link_type, be);
    put_u16(&mut body, 0, be);
    put_u32(&mut body, snaplen, be);
    if let Some(resol) = tsresol {
        put_u16(&mut body, 9, be);
        put_u16(&mut body, 1, be);
        body.extend_from_slice(&[resol, 0, 0, 0]);
    }
    if let Some(offset) = tsoffset {
        put_u16(&mut body, 14, be);
        put_u16(&mut body, 8, be);
        body.extend_from_slice(&if be {
            offset.to_be_bytes()
        } else {
            offset.to_le_bytes()
        });
    }
    if tsresol.is_some() || tsoffset.is_some() {
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    ng_block(1, &body, be)
}

/// An enhanced packet block with a raw 64-bit timestamp.
pub fn epb(if_id: u32, ticks: u64, data: &[u8], orig_len: u32, be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, if_id, be);
    put_u32(&mut body, (ticks >> 32) as u32, be);
    put_u32(&mut body, ticks as u32, be);
    put_u32(&mut body, data.len() as u32, be);
    put_u32(&mut body, orig_len, be);
    body.extend_from_slice(data);
    ng_block(6, &body, be)
}

/// An obsolete packet block.
pub fn opb(if_id: u16, drops: u16, ticks: u64, data: &[u8], orig_len: u32, be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    put_u16(&mut body, if_id, be);
    put_u16(&mut body, drops, be);
    put_u32(&mut body, (ticks >> 32) as u32, be);
    put_u32(&mut body, ticks as u32, be);
    put_u32(&mut body, data.len() as u32, be);
    put_u32(&mut body, orig_len, be);
    body.extend_from_slice(data);
    ng_block(2, &body, be)
}

/// A simple packet block.
pub fn spb(data: &[u8], orig_len: u32, be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, orig_len, be);
    body.extend_from_slice(data);
    ng_block(3, &body, be)
}

/// `n` bytes counting up from `seed`, so that packets differ.
pub fn payload(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// A small deterministic generator for garbage inputs.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u8(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 56) as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u8()).collect()
    }
}
