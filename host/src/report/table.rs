//! The human summary: findings grouped by kind, then by client and service, with counts,
//! first and last time, and the reason.

use super::eve_timestamp;
use crate::evaluation::{FindingSink, Report, ReportKind};
use crate::subject::Subject;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

#[derive(Clone, Debug)]
struct Group {
    count: u64,
    first_ns: u64,
    last_ns: u64,
    severity: &'static str,
    rule: String,
    reason: String,
}

/// Collects findings; [`TableSink::render`] prints them.
#[derive(Default)]
pub struct TableSink {
    groups: BTreeMap<(ReportKind, String, String), Group>,
}

impl TableSink {
    pub fn new() -> TableSink {
        TableSink::default()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Adds the groups another worker collected.
    pub fn merge(&mut self, other: TableSink) {
        for (key, g) in other.groups {
            match self.groups.get_mut(&key) {
                Some(mine) => {
                    mine.count += g.count;
                    if g.first_ns < mine.first_ns {
                        mine.first_ns = g.first_ns;
                        mine.reason = g.reason;
                        mine.rule = g.rule;
                    }
                    mine.last_ns = mine.last_ns.max(g.last_ns);
                }
                None => {
                    self.groups.insert(key, g);
                }
            }
        }
    }

    /// The summary as text: a block per kind, three lines per (client, service).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.groups.is_empty() {
            out.push_str("no findings\n");
            return out;
        }
        let mut current: Option<ReportKind> = None;
        for ((kind, client, service), g) in &self.groups {
            if current != Some(*kind) {
                let total: u64 = self
                    .groups
                    .iter()
                    .filter(|((k, _, _), _)| k == kind)
                    .map(|(_, g)| g.count)
                    .sum();
                let noun = if total == 1 { "finding" } else { "findings" };
                let _ = writeln!(out, "\n{} ({total} {noun})", kind.id());
                current = Some(*kind);
            }
            let _ = writeln!(out, "  [{}] {client} -> {service}", g.severity);
            let _ = writeln!(
                out,
                "      {}x, {} .. {}, rule {}",
                g.count,
                short_time(g.first_ns),
                short_time(g.last_ns),
                g.rule
            );
            let _ = writeln!(out, "      {}", g.reason);
        }
        out
    }
}

/// `2025-03-03 09:00:01.100` (UTC, milliseconds).
fn short_time(ns: u64) -> String {
    let full = eve_timestamp(ns);
    let date_time = full.get(..23).unwrap_or(&full);
    date_time.replacen('T', " ", 1)
}

impl FindingSink for TableSink {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()> {
        let (client, _, server, port, _, ts) = subject.endpoints();
        let service = match subject.server_name() {
            Some(name) => format!("{name} ({server}:{port})"),
            None => format!("{server}:{port}"),
        };
        let g = self
            .groups
            .entry((report.kind, client.to_string(), service))
            .or_insert_with(|| Group {
                count: 0,
                first_ns: ts,
                last_ns: ts,
                severity: report.severity.id(),
                rule: report.rule.clone(),
                reason: report.reason.clone(),
            });
        g.count += 1;
        g.first_ns = g.first_ns.min(ts);
        g.last_ns = g.last_ns.max(ts);
        Ok(())
    }
}
