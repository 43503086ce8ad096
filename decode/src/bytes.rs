//! Bounds-checked big-endian reads: every read of input bytes outside a smoltcp view goes
//! through these, so a short buffer yields `None` instead of a panic.

#[inline]
pub(crate) fn u8_at(data: &[u8], at: usize) -> Option<u8> {
    data.get(at).copied()
}

#[inline]
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..)?
        .first_chunk::<2>()
        .map(|b| u16::from_be_bytes(*b))
}

#[inline]
pub(crate) fn be32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..)?
        .first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
}

#[inline]
pub(crate) fn le32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..)?
        .first_chunk::<4>()
        .map(|b| u32::from_le_bytes(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let d = [1u8, 2, 3, 4, 5];
        assert_eq!(u8_at(&d, 4), Some(5));
        assert_eq!(u8_at(&d, 5), None);
        assert_eq!(be16(&d, 3), Some(0x0405));
        assert_eq!(be16(&d, 4), None);
        assert_eq!(be32(&d, 1), Some(0x0203_0405));
        assert_eq!(be32(&d, 2), None);
        assert_eq!(le32(&d, 0), Some(0x0403_0201));
        assert_eq!(be32(&d, usize::MAX), None);
    }
}
