//! Match tables built once per module instance: address prefix sets and host-name sets.
//!
//! Prefix sets are sorted, merged address intervals searched by binary search: one lookup
//! answers "is this address in any of these prefixes", which is all a check needs, and it
//! costs the same for 3 prefixes or 3,000. Name sets are hash sets of exact names and of
//! `*.suffix` wildcards, probed once per label boundary, so `a.b.example.net` matches
//! `*.example.net` but `badexample.net` does not (a substring automaton would need an
//! extra boundary check for that).

use ipnet::IpNet;
use rustc_hash::FxHashSet as HashSet;
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

    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
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

fn find<T: Ord + Copy>(ranges: &[(T, T)], addr: T) -> bool {
    let after = ranges.partition_point(|&(first, _)| first <= addr);
    after > 0 && ranges.get(after - 1).is_some_and(|&(_, last)| addr <= last)
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
            Some(v4) => is_private(IpAddr::V4(v4)),
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
    }
}
