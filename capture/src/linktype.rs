//! Translation between the `LINKTYPE_` numbers of capture files and the
//! `DLT_` numbers libpcap's API speaks.
//!
//! The two agree except for a few early link types whose `DLT_` values
//! differ between operating systems, so files carry fixed `LINKTYPE_`
//! values and libpcap maps them. This crate reports `LINKTYPE_` numbers
//! everywhere, so it maps too when it hands a link type to libpcap or takes
//! one from it.

#[cfg(target_os = "openbsd")]
const DLT_RAW: i32 = 14;
#[cfg(not(target_os = "openbsd"))]
const DLT_RAW: i32 = 12;

/// (LINKTYPE_, DLT_) pairs that differ.
const DIFFERING: [(u32, i32); 4] = [
    // ATM_RFC1483
    (100, 11),
    // RAW (IPv4 or IPv6, no link header)
    (101, DLT_RAW),
    // SLIP_BSDOS
    (102, 15),
    // PPP_BSDOS
    (103, 16),
];

/// The `DLT_` value libpcap expects for a `LINKTYPE_` number, or `None`
/// when the number does not fit libpcap's `int`.
pub(crate) fn to_dlt(link_type: u32) -> Option<i32> {
    match DIFFERING.iter().find(|(lt, _)| *lt == link_type) {
        Some(&(_, dlt)) => Some(dlt),
        None => i32::try_from(link_type).ok(),
    }
}

/// The `LINKTYPE_` number for a `DLT_` value libpcap reports.
pub(crate) fn from_dlt(dlt: i32) -> u32 {
    match DIFFERING.iter().find(|(_, d)| *d == dlt) {
        Some(&(lt, _)) => lt,
        None => u32::try_from(dlt).unwrap_or(0),
    }
}
