//! IPv4 and IPv6 fragment reassembly, bounded in slots, fragments and time.
//!
//! Buffers are kept and reused across datagrams, so once the table has warmed up a
//! reassembly allocates nothing. Overlapping fragments drop the whole datagram instead of
//! picking a winner: a monitor that reassembles differently from the receiver sees other
//! bytes than the receiver does, which is exactly what overlap attacks aim for.

use std::net::IpAddr;

use crate::Skip;

/// Identifies one datagram's fragments (RFC 791 for IPv4; RFC 8200 leaves the protocol
/// out for IPv6, which gets 0 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragKey {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) id: u32,
    pub(crate) protocol: u8,
}

/// What only the first fragment (offset 0) tells: the header length before the
/// fragmentable part, and for IPv6 the next header that starts the reassembled part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FirstInfo {
    pub(crate) header_len: usize,
    pub(crate) next: u8,
}

/// One fragment as decoded from its packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fragment<'f> {
    pub(crate) offset: usize,
    pub(crate) more: bool,
    pub(crate) data: &'f [u8],
    /// `Some` on the fragment at offset 0.
    pub(crate) first: Option<FirstInfo>,
    /// The largest offset + length the IP header can describe.
    pub(crate) max_end: usize,
}

#[derive(Debug, Default)]
struct Slot {
    in_use: bool,
    key: Option<FragKey>,
    started_ns: u64,
    data: Vec<u8>,
    /// Received byte ranges, sorted by start and never overlapping.
    pieces: Vec<(usize, usize)>,
    received: usize,
    total: Option<usize>,
    first: Option<FirstInfo>,
}

impl Slot {
    fn release(&mut self) {
        self.in_use = false;
        self.key = None;
        self.pieces.clear();
        self.received = 0;
        self.total = None;
        self.first = None;
    }
}

#[derive(Debug)]
pub(crate) struct Reassembler {
    max_sets: usize,
    max_fragments: usize,
    timeout_ns: u64,
    slots: Vec<Slot>,
    out: Vec<u8>,
    pub(crate) completed: u64,
    pub(crate) expired: u64,
    pub(crate) dropped: u64,
}

impl Reassembler {
    pub(crate) fn new(max_sets: usize, max_fragments: usize, timeout_ns: u64) -> Self {
        Reassembler {
            max_sets,
            max_fragments,
            timeout_ns,
            slots: Vec::new(),
            out: Vec::new(),
            completed: 0,
            expired: 0,
            dropped: 0,
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.slots.iter().filter(|s| s.in_use).count()
    }

    fn expire(&mut self, now_ns: u64) {
        for slot in &mut self.slots {
            if slot.in_use && now_ns.saturating_sub(slot.started_ns) > self.timeout_ns {
                slot.release();
                self.expired += 1;
            }
        }
    }

    /// Drops the datagram of `key` if one is held.
    pub(crate) fn forget(&mut self, key: &FragKey) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.in_use && s.key.as_ref() == Some(key))
        {
            slot.release();
            self.dropped += 1;
        }
    }

    /// Stores `frag`; returns the reassembled fragmentable part and the first fragment's
    /// facts once every byte has arrived.
    ///
    /// Errors: [`Skip::FragmentPending`] while bytes are missing,
    /// [`Skip::FragmentTableFull`] when no slot is free (nothing stored), and the
    /// malformed-fragment reasons, each of which also drops the datagram.
    pub(crate) fn insert(
        &mut self,
        key: FragKey,
        frag: Fragment<'_>,
        now_ns: u64,
    ) -> Result<(&[u8], FirstInfo), Skip> {
        self.expire(now_ns);
        let len = frag.data.len();
        let end = frag.offset.saturating_add(len);
        if end > frag.max_end {
            self.forget(&key);
            return Err(Skip::FragmentTooLarge {
                end,
                max: frag.max_end,
            });
        }
        if frag.more && !len.is_multiple_of(8) {
            self.forget(&key);
            return Err(Skip::FragmentMisaligned {
                offset: frag.offset,
                len,
            });
        }

        let index = match self
            .slots
            .iter()
            .position(|s| s.in_use && s.key.as_ref() == Some(&key))
        {
            Some(i) => i,
            None => {
                let free = match self.slots.iter().position(|s| !s.in_use) {
                    Some(i) => i,
                    None if self.slots.len() < self.max_sets => {
                        self.slots.push(Slot::default());
                        self.slots.len() - 1
                    }
                    None => return Err(Skip::FragmentTableFull),
                };
                let slot = self.slots.get_mut(free).ok_or(Skip::FragmentTableFull)?;
                slot.in_use = true;
                slot.key = Some(key);
                slot.started_ns = now_ns;
                slot.data.clear();
                free
            }
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return Err(Skip::FragmentTableFull);
        };

        match add_piece(slot, &frag, end, self.max_fragments) {
            Ok(()) => {}
            Err(Some(skip)) => {
                slot.release();
                self.dropped += 1;
                return Err(skip);
            }
            // An exact duplicate: nothing new.
            Err(None) => return Err(Skip::FragmentPending),
        }

        let (Some(total), Some(first)) = (slot.total, slot.first) else {
            return Err(Skip::FragmentPending);
        };
        if slot.received != total {
            return Err(Skip::FragmentPending);
        }
        // Complete: hand the bytes over through `out` and keep the old `out` allocation
        // in the slot for the next datagram.
        std::mem::swap(&mut self.out, &mut slot.data);
        slot.release();
        self.completed += 1;
        self.out.truncate(total);
        Ok((&self.out, first))
    }
}

/// Adds one fragment to a slot. `Err(Some(_))` drops the datagram, `Err(None)` is an exact
/// duplicate.
fn add_piece(
    slot: &mut Slot,
    frag: &Fragment<'_>,
    end: usize,
    max_fragments: usize,
) -> Result<(), Option<Skip>> {
    let start = frag.offset;
    let contradiction = Some(Skip::FragmentOverlap { offset: start });
    if frag.more {
        if slot.total.is_some_and(|t| end > t) {
            return Err(contradiction);
        }
    } else {
        if slot.total.is_some_and(|t| t != end) || slot.pieces.last().is_some_and(|p| p.1 > end) {
            return Err(contradiction);
        }
        slot.total = Some(end);
    }
    if let Some(first) = frag.first {
        slot.first = Some(first);
    }
    if start == end {
        return Ok(());
    }

    // Pieces are sorted and disjoint: the only candidates for overlap are the last
    // piece starting before `end` and the pieces before it that still reach `start`.
    let at = slot.pieces.partition_point(|p| p.0 < end);
    if let Some(&(s, e)) = at.checked_sub(1).and_then(|i| slot.pieces.get(i))
        && e > start
    {
        let same = s == start
            && e == end
            && slot
                .data
                .get(start..end)
                .is_some_and(|old| old == frag.data);
        return Err(if same { None } else { contradiction });
    }

    if slot.pieces.len() >= max_fragments {
        return Err(Some(Skip::FragmentLimit {
            count: max_fragments,
        }));
    }
    if slot.data.len() < end {
        slot.data.resize(end, 0);
    }
    if let Some(dst) = slot.data.get_mut(start..end) {
        dst.copy_from_slice(frag.data);
    }
    slot.pieces.insert(at, (start, end));
    slot.received += end - start;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            protocol: 17,
        }
    }

    fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            offset,
            more,
            data,
            first: (offset == 0).then_some(FirstInfo {
                header_len: 20,
                next: 17,
            }),
            max_end: 65515,
        }
    }

    #[test]
    fn out_of_order_with_duplicate() {
        let mut r = Reassembler::new(4, 16, 1_000);
        assert_eq!(
            r.insert(key(1), frag(16, false, b"tail"), 0),
            Err(Skip::FragmentPending)
        );
        assert_eq!(
            r.insert(key(1), frag(8, true, b"12345678"), 1),
            Err(Skip::FragmentPending)
        );
        assert_eq!(
            r.insert(key(1), frag(8, true, b"12345678"), 1),
            Err(Skip::FragmentPending)
        );
        let got = r.insert(key(1), frag(0, true, b"abcdefgh"), 2);
        assert_eq!(
            got,
            Ok((
                &b"abcdefgh12345678tail"[..],
                FirstInfo {
                    header_len: 20,
                    next: 17
                }
            ))
        );
        assert_eq!(r.pending(), 0);
        assert_eq!(r.completed, 1);
    }

    #[test]
    fn overlap_drops_datagram() {
        let mut r = Reassembler::new(4, 16, 1_000);
        let _ = r.insert(key(2), frag(0, true, b"abcdefgh"), 0);
        assert_eq!(
            r.insert(key(2), frag(0, true, b"abcdefgX"), 0),
            Err(Skip::FragmentOverlap { offset: 0 })
        );
        assert_eq!(r.pending(), 0);
        let _ = r.insert(key(3), frag(0, true, b"abcdefghabcdefgh"), 0);
        assert_eq!(
            r.insert(key(3), frag(8, false, b"zz"), 0),
            Err(Skip::FragmentOverlap { offset: 8 })
        );
    }

    #[test]
    fn table_full_and_timeout() {
        let mut r = Reassembler::new(1, 16, 100);
        assert_eq!(
            r.insert(key(1), frag(8, true, b"12345678"), 0),
            Err(Skip::FragmentPending)
        );
        assert_eq!(
            r.insert(key(2), frag(8, true, b"12345678"), 50),
            Err(Skip::FragmentTableFull)
        );
        assert_eq!(
            r.insert(key(2), frag(8, true, b"12345678"), 101),
            Err(Skip::FragmentPending)
        );
        assert_eq!(r.expired, 1);
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn limits() {
        let mut r = Reassembler::new(2, 2, 100);
        assert_eq!(
            r.insert(key(1), frag(65512, false, b"12345678"), 0),
            Err(Skip::FragmentTooLarge {
                end: 65520,
                max: 65515
            })
        );
        assert_eq!(
            r.insert(key(1), frag(0, true, b"123"), 0),
            Err(Skip::FragmentMisaligned { offset: 0, len: 3 })
        );
        let _ = r.insert(key(1), frag(0, true, b"12345678"), 0);
        let _ = r.insert(key(1), frag(8, true, b"12345678"), 0);
        assert_eq!(
            r.insert(key(1), frag(16, true, b"12345678"), 0),
            Err(Skip::FragmentLimit { count: 2 })
        );
        assert_eq!(r.pending(), 0);
    }
}
