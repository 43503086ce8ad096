//! Match tables built once per module instance: address prefix sets and host-name sets.
//!
//! Prefix sets are sorted, merged address intervals searched by binary search: one lookup
//! answers "is this address in any of these prefixes", which is all a check needs, and it
//! costs the same for 3 prefixes or 3,000. Name sets are hash sets of exact names and of
//! `*.suffix` wildcards, probed once per label boundary, so `a.b.example.net` matches
//! `*.example.net` but `badexample.net` does not (a substring automaton would need an
//! extra boundary check for that).

use ipnet::IpNet;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::hash::Hash;
use std::net::IpAddr;

/// A set of address prefixes, both families.
#[derive(Clone, Debug, Default)]
pub struct PrefixSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl PrefixSet {
    pub fn new<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> PrefixSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        PrefixSet {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.contains_key(AddrKey::of(addr))
    }

    /// [`PrefixSet::contains`] for an address already turned into its key, so a flow's
    /// addresses are converted once however many sets they are looked up in.
    #[inline]
    pub fn contains_key(&self, key: AddrKey) -> bool {
        match key {
            AddrKey::V4(a) => find(&self.v4, a),
            AddrKey::V6(a) => find(&self.v6, a),
        }
    }
}

/// An address as the integer prefix sets compare, IPv4-mapped IPv6 addresses as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrKey {
    V4(u32),
    V6(u128),
}

impl AddrKey {
    #[inline]
    pub fn of(addr: IpAddr) -> AddrKey {
        match addr {
            IpAddr::V4(a) => AddrKey::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(u32::from(v4)),
                None => AddrKey::V6(u128::from(a)),
            },
        }
    }

    /// [`is_private`] on the key: the same ranges as integer masks.
    #[inline]
    pub fn is_private(self) -> bool {
        match self {
            AddrKey::V4(a) => {
                a >> 24 == 10                      // 10.0.0.0/8
                    || a >> 20 == 0xac1            // 172.16.0.0/12
                    || a >> 16 == 0xc0a8           // 192.168.0.0/16
                    || a >> 24 == 127              // loopback
                    || a >> 16 == 0xa9fe           // link-local 169.254.0.0/16
                    || a == 0                      // unspecified
                    || a >> 22 == (100 << 2) | 1 // shared 100.64.0.0/10
            }
            AddrKey::V6(a) => {
                a == 1                             // ::1
                    || a == 0                      // ::
                    || a >> 121 == 0xfc >> 1       // fc00::/7
                    || a >> 118 == 0xfe80 >> 6 // fe80::/10
            }
        }
    }
}

fn merge<T: Ord + Copy + MergeStep>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match out.last_mut() {
            Some(prev) if first <= prev.1.next_or_max() => {
                if last > prev.1 {
                    prev.1 = last;
                }
            }
            _ => out.push((first, last)),
        }
    }
    out
}

trait MergeStep {
    fn next_or_max(self) -> Self;
}
impl MergeStep for u32 {
    fn next_or_max(self) -> Self {
        self.saturating_add(1)
    }
}
impl MergeStep for u128 {
    fn next_or_max(self) -> Self {
        self.saturating_add(1)
    }
}

/// Up to this many ranges a linear scan beats a binary search: no data-dependent branch
/// per step, and most sets a policy builds (origins, an endpoint subnet, a rule's
/// prefixes) hold one to four.
const LINEAR_UP_TO: usize = 8;

#[inline]
fn find<T: Ord + Copy>(ranges: &[(T, T)], addr: T) -> bool {
    if ranges.len() <= LINEAR_UP_TO {
        return ranges
            .iter()
            .any(|&(first, last)| first <= addr && addr <= last);
    }
    let after = ranges.partition_point(|&(first, _)| first <= addr);
    after > 0 && ranges.get(after - 1).is_some_and(|&(_, last)| addr <= last)
}

/// Exact names mapped to a value (a service index), looked up as [`normalize`] would
/// compare them but without normalizing or hashing: the name's trailing dots are skipped
/// and its bytes lower-cased while comparing. Entries are sorted by length, so a name of a
/// length no key has (most names of a flow) is rejected by one binary search, and only
/// keys of the same length are compared, each stopping at its first differing byte.
///
/// This is faster than a hash map of normalized names for the few keys a policy has (two
/// per service), above all inside the sandbox, where hashing and the byte-wise
/// normalization pass compile to slower code than natively.
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    entries: Vec<(String, usize)>,
}

impl NameIndex {
    /// Builds the index; a key given twice keeps its last value, as a map insert would.
    pub fn new(pairs: impl IntoIterator<Item = (String, usize)>) -> NameIndex {
        let mut entries = last_wins(pairs);
        entries.sort_unstable_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        NameIndex { entries }
    }

    /// The value of the key equal to `normalize(name)`.
    pub fn get(&self, name: &str) -> Option<usize> {
        let bytes = name.as_bytes();
        let end = bytes.iter().rposition(|&b| b != b'.').map_or(0, |i| i + 1);
        let key = bytes.get(..end).unwrap_or_default();
        let first = self.entries.partition_point(|(k, _)| k.len() < key.len());
        self.entries
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(|(k, _)| k.len() == key.len())
            .find(|(k, _)| lowered_equals(key, k.as_bytes()))
            .map(|&(_, v)| v)
    }
}

/// True when `name`, ASCII-lower-cased, equals `key` (of the same length). Compares eight
/// bytes at a time, lower-casing each word with the carry-free bit trick the standard
/// library uses for `make_ascii_lowercase`: a name that matches is compared in a few
/// steps instead of one per byte, which matters most in the sandbox.
fn lowered_equals(name: &[u8], key: &[u8]) -> bool {
    if name.len() != key.len() {
        return false;
    }
    let (names, keys) = (name.chunks_exact(8), key.chunks_exact(8));
    let (name_tail, key_tail) = (names.remainder(), keys.remainder());
    for (n, k) in names.zip(keys) {
        let (Some(n), Some(k)) = (n.first_chunk::<8>(), k.first_chunk::<8>()) else {
            return false;
        };
        if lower_word(u64::from_le_bytes(*n)) != u64::from_le_bytes(*k) {
            return false;
        }
    }
    name_tail
        .iter()
        .zip(key_tail)
        .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// Eight bytes with every ASCII upper-case letter lower-cased; other bytes unchanged.
#[inline]
fn lower_word(word: u64) -> u64 {
    const L: u64 = 0x0101_0101_0101_0101;
    let ascii = !word & (L * 0x80);
    let low7 = word & (L * 0x7f);
    // High bit set in bytes >= 'A' and in bytes > 'Z' (of their low seven bits).
    let at_least_a = low7 + L * (0x80 - b'A' as u64);
    let above_z = low7 + L * (0x80 - b'Z' as u64 - 1);
    let upper = ascii & (at_least_a ^ above_z);
    word | (upper >> 2)
}

/// The pairs with one entry per key, the last value given for it (as map inserts keep).
fn last_wins<K: Hash + Eq>(pairs: impl IntoIterator<Item = (K, usize)>) -> Vec<(K, usize)> {
    let map: HashMap<K, usize> = pairs.into_iter().collect();
    map.into_iter().collect()
}

/// Addresses mapped to a value (a service index): a sorted list searched by binary
/// search, which for the handful of addresses a policy names is cheaper than hashing an
/// `IpAddr` (and free when the list is empty, as public addresses usually are).
#[derive(Clone, Debug, Default)]
pub struct AddrIndex {
    entries: Vec<(IpAddr, usize)>,
}

impl AddrIndex {
    /// Builds the index; an address given twice keeps its last value.
    pub fn new(pairs: impl IntoIterator<Item = (IpAddr, usize)>) -> AddrIndex {
        let mut entries = last_wins(pairs);
        entries.sort_unstable();
        AddrIndex { entries }
    }

    /// The empty case is decided where the call is (inside the sandbox a call that only
    /// finds an empty list still costs a frame and an interrupt check, measurable per
    /// flow); the search is a call of its own.
    #[inline(always)]
    pub fn get(&self, addr: IpAddr) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        self.search(addr)
    }

    #[inline(never)]
    fn search(&self, addr: IpAddr) -> Option<usize> {
        self.entries
            .binary_search_by(|(a, _)| a.cmp(&addr))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|&(_, v)| v)
    }
}

/// Exact host names plus `*.suffix` wildcards, all lower case.
#[derive(Clone, Debug, Default)]
pub struct NameSet {
    exact: HashSet<String>,
    suffixes: HashSet<String>,
}

impl NameSet {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a String>) -> NameSet {
        let mut set = NameSet::default();
        for name in names {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(suffix) => set.suffixes.insert(suffix.to_string()),
                None => set.exact.insert(name),
            };
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    /// `name` must already be lower case without a trailing dot (see [`normalize`]).
    pub fn contains(&self, name: &str) -> bool {
        if self.exact.contains(name) {
            return true;
        }
        if self.suffixes.is_empty() {
            return false;
        }
        name.match_indices('.').any(|(at, _)| {
            name.get(at + 1..)
                .is_some_and(|s| self.suffixes.contains(s))
        })
    }
}

/// Lower-cases a host name and drops a trailing dot, borrowing when nothing changes (the
/// common case: the host already normalizes DNS names).
pub fn normalize(name: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(trimmed)
    }
}

/// True for addresses that are not routed on the public Internet: RFC 1918, shared
/// address space (RFC 6598), loopback, link-local, unique-local IPv6 and unspecified.
pub fn is_private(addr: IpAddr) -> bool {
    AddrKey::of(addr).is_private()
}

#[cfg(test)]
fn is_private_by_std(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_private_by_std(IpAddr::V4(v4)),
            None => {
                let first = a.segments()[0];
                a.is_loopback()
                    || a.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn prefix_sets_merge_and_match_both_families() {
        let set = PrefixSet::new(&nets(&[
            "10.1.0.0/16",
            "10.2.0.0/16",
            "10.1.2.0/24",
            "255.255.255.255/32",
            "2001:db8::/32",
        ]));
        for yes in [
            "10.1.0.0",
            "10.1.255.255",
            "10.2.3.4",
            "255.255.255.255",
            "2001:db8::1",
        ] {
            assert!(set.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in [
            "10.0.255.255",
            "10.3.0.0",
            "0.0.0.0",
            "2001:db9::1",
            "::ffff:10.4.0.1",
        ] {
            assert!(!set.contains(no.parse().unwrap()), "{no}");
        }
        assert!(set.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(!PrefixSet::default().contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn name_index_compares_as_normalize_does() {
        let index = NameIndex::new([
            (
                "fabrikam-records.fhir.azurehealthcareapis.com".to_string(),
                0,
            ),
            (
                "fabrikam-records.privatelink.fhir.azurehealthcareapis.com".to_string(),
                0,
            ),
            (
                "fabrikam-imaging.dicom.azurehealthcareapis.com".to_string(),
                1,
            ),
            ("a.b".to_string(), 2),
            ("a.b".to_string(), 3),
        ]);
        for (name, want) in [
            ("fabrikam-records.fhir.azurehealthcareapis.com", Some(0)),
            ("Fabrikam-Records.FHIR.AzureHealthcareAPIs.com..", Some(0)),
            (
                "FABRIKAM-RECORDS.PRIVATELINK.FHIR.AZUREHEALTHCAREAPIS.COM",
                Some(0),
            ),
            ("fabrikam-imaging.dicom.azurehealthcareapis.com.", Some(1)),
            ("fabrikam-imaging.dicom.azurehealthcareapis.co", None),
            ("fabrikam-imaging.dicom.azurehealthcareapis.coM", Some(1)),
            ("fabrikam-imaging.dicom.azurehealthcareapis.coN", None),
            ("fabrikam-imaging@dicom.azurehealthcareapis.com", None),
            ("A.B", Some(3)),
            ("a.b.", Some(3)),
            ("", None),
            (".", None),
            ("ä.b", None),
        ] {
            assert_eq!(index.get(name), want, "{name}");
            let normalized = normalize(name);
            let by_normalize = index
                .entries
                .iter()
                .rev()
                .find(|(k, _)| *k == normalized)
                .map(|&(_, v)| v);
            assert_eq!(index.get(name), by_normalize, "{name}");
        }
        // Every byte value, lower-cased eight at a time, as one at a time.
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b, b'Z', b'@', b'[', b'a', b, 0x80, 0xc1]);
            let one_by_one = word.to_le_bytes().map(|x| x.to_ascii_lowercase());
            assert_eq!(lower_word(word).to_le_bytes(), one_by_one, "{b}");
        }
        let empty = NameIndex::default();
        assert_eq!(empty.get("a"), None);
    }

    #[test]
    fn name_sets_respect_label_boundaries() {
        let names = vec![
            "Export.blob.core.windows.net.".to_string(),
            "*.vault.azure.net".to_string(),
        ];
        let set = NameSet::new(&names);
        assert!(set.contains("export.blob.core.windows.net"));
        assert!(set.contains("kv1.vault.azure.net"));
        assert!(set.contains("a.b.vault.azure.net"));
        assert!(!set.contains("vault.azure.net"));
        assert!(!set.contains("evilvault.azure.net"));
        assert!(!set.contains("other.blob.core.windows.net"));
    }

    #[test]
    fn private_addresses() {
        for p in [
            "10.0.0.1",
            "172.31.1.1",
            "192.168.1.1",
            "100.64.0.1",
            "127.0.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["20.37.1.10", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
        // The integer masks agree with the standard library's predicates at and around
        // every range edge.
        for p in [
            "9.255.255.255",
            "10.0.0.0",
            "11.0.0.0",
            "172.15.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.168.0.0",
            "192.169.0.0",
            "126.255.255.255",
            "127.0.0.0",
            "128.0.0.0",
            "169.253.255.255",
            "169.254.0.0",
            "169.255.0.0",
            "0.0.0.0",
            "0.0.0.1",
            "100.63.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "100.128.0.0",
            "::",
            "::1",
            "::2",
            "fbff::1",
            "fc00::",
            "fdff:ffff::1",
            "fe00::",
            "fe7f::1",
            "fe80::",
            "febf::1",
            "fec0::",
            "::ffff:10.0.0.1",
            "::ffff:8.8.8.8",
            "::ffff:0.0.0.0",
        ] {
            let a: IpAddr = p.parse().unwrap();
            assert_eq!(is_private(a), is_private_by_std(a), "{p}");
        }
    }
}
