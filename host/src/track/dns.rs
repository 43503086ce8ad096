//! Which name each client resolved to each address.
//!
//! A client that looked up `fabrikam-records.fhir.azurehealthcareapis.com` and then
//! connects to the address it got is reaching that service, whatever the TLS or HTTP
//! layer later says. The tracker remembers (client, address) → name and CNAME chain for
//! the answer's TTL plus a grace period (clients keep using addresses a little past TTL).
//!
//! Memory is bounded by two generations: when the current map reaches half the limit it
//! becomes the previous one and the old previous is dropped, so lookups stay O(1) and
//! no sweep is ever needed.

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub name: Arc<str>,
    pub chain: Arc<[Box<str>]>,
    pub expires_ns: u64,
}

#[derive(Clone)]
pub struct DnsTracker {
    current: FxHashMap<(IpAddr, IpAddr), Resolution>,
    previous: FxHashMap<(IpAddr, IpAddr), Resolution>,
    generation_size: usize,
    grace_ns: u64,
}

impl DnsTracker {
    /// `max_entries` bounds the remembered pairs; `grace_secs` extends every TTL.
    pub fn new(max_entries: usize, grace_secs: u64) -> DnsTracker {
        DnsTracker {
            current: FxHashMap::default(),
            previous: FxHashMap::default(),
            generation_size: (max_entries / 2).max(1),
            grace_ns: grace_secs.saturating_mul(1_000_000_000),
        }
    }

    /// Remembers that `client` resolved `name` (through `chain`) to `addresses`.
    pub fn record(
        &mut self,
        client: IpAddr,
        name: &Arc<str>,
        chain: &Arc<[Box<str>]>,
        addresses: &[IpAddr],
        ttl_secs: u32,
        now_ns: u64,
    ) {
        let expires_ns = now_ns
            .saturating_add(u64::from(ttl_secs).saturating_mul(1_000_000_000))
            .saturating_add(self.grace_ns);
        for addr in addresses {
            if self.current.len() >= self.generation_size {
                self.previous = std::mem::take(&mut self.current);
            }
            self.current.insert(
                (client, *addr),
                Resolution {
                    name: name.clone(),
                    chain: chain.clone(),
                    expires_ns,
                },
            );
        }
    }

    /// The name `client` resolved to `addr`, if that answer is still fresh at `now_ns`.
    pub fn lookup(&self, client: IpAddr, addr: IpAddr, now_ns: u64) -> Option<&Resolution> {
        let key = (client, addr);
        self.current
            .get(&key)
            .or_else(|| self.previous.get(&key))
            .filter(|r| now_ns <= r.expires_ns)
    }

    /// Whether an answer for (`client`, `addr`) is remembered at all, fresh or not.
    pub fn knows(&self, client: IpAddr, addr: IpAddr) -> bool {
        let key = (client, addr);
        self.current.contains_key(&key) || self.previous.contains_key(&key)
    }

    /// Whether the current generation ever filled up and became the previous one.
    pub fn has_rotated(&self) -> bool {
        !self.previous.is_empty()
    }

    /// Whether recording every answer of `later` after this tracker's own would keep
    /// within one generation, so that no remembered answer would be dropped: then
    /// [`DnsTracker::take_later`] leaves exactly what recording them one by one would.
    pub fn can_take(&self, later: &DnsTracker) -> bool {
        !later.has_rotated() && self.current.len() + later.current.len() <= self.generation_size
    }

    /// Records the answers `later` remembers, newer than this tracker's own (see
    /// [`DnsTracker::can_take`]).
    pub fn take_later(&mut self, later: DnsTracker) {
        self.current.extend(later.current);
    }

    /// The bound on remembered pairs the tracker was made with.
    pub fn max_entries(&self) -> usize {
        self.generation_size.saturating_mul(2)
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_after_ttl_plus_grace_and_memory_is_bounded() {
        let mut t = DnsTracker::new(4, 5);
        let client: IpAddr = "10.1.5.9".parse().unwrap();
        let name: Arc<str> = "a.example".into();
        let chain: Arc<[Box<str>]> = Arc::from(vec!["b.example".into()]);
        let addr: IpAddr = "20.37.1.10".parse().unwrap();
        t.record(client, &name, &chain, &[addr], 30, 1_000_000_000);
        assert_eq!(
            &*t.lookup(client, addr, 36_000_000_000).unwrap().name,
            "a.example"
        );
        assert!(t.lookup(client, addr, 36_000_000_001).is_none());
        assert!(t.lookup("10.1.5.10".parse().unwrap(), addr, 2).is_none());
        for i in 0..100u8 {
            t.record(client, &name, &chain, &[IpAddr::from([1, 1, 1, i])], 30, 0);
        }
        assert!(t.len() <= 4);
        assert!(t.lookup(client, IpAddr::from([1, 1, 1, 99]), 0).is_some());
    }
}
