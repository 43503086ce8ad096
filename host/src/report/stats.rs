//! The statistics of a run. Every packet read is accounted for exactly once: decoded,
//! filtered out by BPF, skipped (with a reason) or malformed (with a reason).

use crate::evaluation::EvalStats;
use crate::track::TrackStats;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PacketStats {
    pub packets_read: u64,
    pub decoded: u64,
    pub filtered: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub malformed: BTreeMap<&'static str, u64>,
    pub bytes_read: u64,
}

impl PacketStats {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().sum()
    }

    /// True when decoded + filtered + skipped + malformed = read.
    pub fn balanced(&self) -> bool {
        self.decoded + self.filtered + self.skipped_total() + self.malformed_total()
            == self.packets_read
    }

    pub fn merge(&mut self, other: &PacketStats) {
        self.packets_read += other.packets_read;
        self.decoded += other.decoded;
        self.filtered += other.filtered;
        self.bytes_read += other.bytes_read;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        for (k, v) in &other.malformed {
            *self.malformed.entry(k).or_default() += v;
        }
    }
}

/// Everything a run reports at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunStats {
    pub packets: PacketStats,
    pub flows: u64,
    pub flows_evicted: u64,
    pub flows_timed_out: u64,
    pub dns_answers: u64,
    pub dns_malformed: u64,
    pub sni_seen: u64,
    pub http_hosts_seen: u64,
    pub flow_record_tuples: u64,
    pub flow_record_malformed: u64,
    pub flow_records_flows: u64,
    pub flow_records_denied_skipped: u64,
    pub flows_evaluated: u64,
    pub dns_evaluated: u64,
    pub batches: u64,
    pub module_errors: u64,
    pub findings: BTreeMap<&'static str, u64>,
    pub input_errors: Vec<String>,
    pub module_swaps: u64,
    pub elapsed_secs: f64,
    pub packets_per_sec: f64,
}

impl RunStats {
    pub fn add_tracking(&mut self, t: &TrackStats) {
        self.flows += t.flows;
        self.flows_evicted += t.flows_evicted;
        self.flows_timed_out += t.flows_timed_out;
        self.dns_answers += t.dns_answers;
        self.dns_malformed += t.dns_malformed;
        self.sni_seen += t.sni_seen;
        self.http_hosts_seen += t.http_hosts_seen;
    }

    pub fn add_evaluation(&mut self, e: &EvalStats) {
        self.flows_evaluated += e.flows_evaluated;
        self.dns_evaluated += e.dns_evaluated;
        self.batches += e.batches;
        self.module_errors += e.module_errors;
        for (k, v) in &e.reports {
            *self.findings.entry(k).or_default() += v;
        }
    }

    /// Adds another worker's share of the same run.
    pub fn merge(&mut self, o: &RunStats) {
        self.packets.merge(&o.packets);
        self.flows += o.flows;
        self.flows_evicted += o.flows_evicted;
        self.flows_timed_out += o.flows_timed_out;
        self.dns_answers += o.dns_answers;
        self.dns_malformed += o.dns_malformed;
        self.sni_seen += o.sni_seen;
        self.http_hosts_seen += o.http_hosts_seen;
        self.flow_record_tuples += o.flow_record_tuples;
        self.flow_record_malformed += o.flow_record_malformed;
        self.flow_records_flows += o.flow_records_flows;
        self.flow_records_denied_skipped += o.flow_records_denied_skipped;
        self.flows_evaluated += o.flows_evaluated;
        self.dns_evaluated += o.dns_evaluated;
        self.batches += o.batches;
        self.module_errors += o.module_errors;
        for (k, v) in &o.findings {
            *self.findings.entry(k).or_default() += v;
        }
        self.input_errors.extend(o.input_errors.iter().cloned());
        self.module_swaps = self.module_swaps.max(o.module_swaps);
    }

    pub fn set_elapsed(&mut self, elapsed: Duration) {
        self.elapsed_secs = elapsed.as_secs_f64();
        self.packets_per_sec = if self.elapsed_secs > 0.0 {
            self.packets.packets_read as f64 / self.elapsed_secs
        } else {
            0.0
        };
    }

    pub fn findings_total(&self) -> u64 {
        self.findings.values().sum()
    }

    /// The summary people read at the end of a run.
    pub fn render(&self) -> String {
        let p = &self.packets;
        let mut s = String::new();
        let _ = writeln!(s, "statistics");
        if p.packets_read > 0 || self.flow_record_tuples == 0 {
            let _ = writeln!(
                s,
                "  packets read       {:>12}  ({} bytes)",
                p.packets_read, p.bytes_read
            );
            let _ = writeln!(s, "    decoded          {:>12}", p.decoded);
            if p.filtered > 0 {
                let _ = writeln!(s, "    filtered (BPF)   {:>12}", p.filtered);
            }
            let _ = writeln!(s, "    skipped          {:>12}", p.skipped_total());
            for (k, v) in &p.skipped {
                let _ = writeln!(s, "      {k:<22} {v:>8}");
            }
            let _ = writeln!(s, "    malformed        {:>12}", p.malformed_total());
            for (k, v) in &p.malformed {
                let _ = writeln!(s, "      {k:<22} {v:>8}");
            }
            let _ = writeln!(
                s,
                "  flows              {:>12}  ({} evicted, {} timed out)",
                self.flows, self.flows_evicted, self.flows_timed_out
            );
            let _ = writeln!(
                s,
                "  DNS answers        {:>12}  ({} unreadable)",
                self.dns_answers, self.dns_malformed
            );
            let _ = writeln!(
                s,
                "  TLS SNI / HTTP Host {:>11} / {}",
                self.sni_seen, self.http_hosts_seen
            );
        }
        if self.flow_record_tuples > 0 || self.flow_record_malformed > 0 {
            let _ = writeln!(
                s,
                "  flow-log tuples    {:>12}  ({} malformed)",
                self.flow_record_tuples, self.flow_record_malformed
            );
            let _ = writeln!(
                s,
                "  flow-log flows     {:>12}  ({} denied by an NSG, not evaluated)",
                self.flow_records_flows, self.flow_records_denied_skipped
            );
        }
        let _ = writeln!(
            s,
            "  evaluations        {:>12}  ({} flows, {} DNS answers, {} batches)",
            self.flows_evaluated + self.dns_evaluated,
            self.flows_evaluated,
            self.dns_evaluated,
            self.batches
        );
        let _ = writeln!(s, "  module errors      {:>12}", self.module_errors);
        if self.module_swaps > 0 {
            let _ = writeln!(s, "  module swaps       {:>12}", self.module_swaps);
        }
        let _ = writeln!(s, "  findings           {:>12}", self.findings_total());
        for (k, v) in &self.findings {
            let _ = writeln!(s, "    {k:<24} {v:>8}");
        }
        for e in &self.input_errors {
            let _ = writeln!(s, "  input error: {e}");
        }
        let _ = writeln!(
            s,
            "  elapsed            {:>11.3}s  ({:.0} packets/s)",
            self.elapsed_secs, self.packets_per_sec
        );
        s
    }
}
