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

    /// The summary as text: one block per kind, one line per (client, service).
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
                let _ = writeln!(out, "\n{} ({total})", kind.id());
                let _ = writeln!(
                    out,
                    "  {:<8} {:<6} {:<40} {:<48} {:<26} {:<26} reason",
                    "severity", "count", "client", "service", "first", "last"
                );
                current = Some(*kind);
            }
            let _ = writeln!(
                out,
                "  {:<8} {:<6} {:<40} {:<48} {:<26} {:<26} [{}] {}",
                g.severity,
                g.count,
                client,
                service,
                eve_timestamp(g.first_ns),
                eve_timestamp(g.last_ns),
                g.rule,
                g.reason
            );
        }
        out
    }
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
