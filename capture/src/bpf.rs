//! BPF filters compiled by libpcap and run on packets from any reader.
//!
//! A BPF program is compiled for one link type: `udp port 53` on Ethernet
//! looks at different offsets than on Linux cooked capture or raw IP. pcapng
//! files may mix link types, so [`BpfFilterSet`] compiles the expression once
//! per link type it meets.

use crate::error::{CaptureError, ErrorKind, Subject, libpcap_kind};

/// LINKTYPE_ETHERNET, the link type an expression is first checked against.
const LINKTYPE_ETHERNET: u32 = 1;

/// A BPF expression compiled by libpcap for one link type.
///
/// Matching runs libpcap's BPF interpreter on the bytes given. The
/// interpreter sees the captured bytes as the whole packet, so length
/// primitives (`len`, `greater`, `less`) compare against the captured
/// length, which is shorter than the wire length for snaplen-cut packets.
pub struct BpfFilter {
    expr: String,
    link_type: u32,
    program: pcap::BpfProgram,
}

impl std::fmt::Debug for BpfFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfFilter")
            .field("expr", &self.expr)
            .field("link_type", &self.link_type)
            .finish_non_exhaustive()
    }
}

impl BpfFilter {
    /// Compiles `expr` (tcpdump syntax) with optimisation for packets of
    /// `link_type` (a `LINKTYPE_` number).
    ///
    /// libpcap's handle for compiling uses a snaplen of 65535; the snaplen
    /// only changes the accept length a program returns, never whether it
    /// matches, so it is not a parameter.
    pub fn new(expr: &str, link_type: u32) -> Result<BpfFilter, CaptureError> {
        let bpf_error = |message: String| {
            CaptureError::new(
                Subject::None,
                ErrorKind::Bpf {
                    expr: expr.to_string(),
                    link_type,
                    message,
                },
            )
        };
        let dlt = crate::linktype::to_dlt(link_type).ok_or_else(|| {
            CaptureError::new(
                Subject::None,
                ErrorKind::OutOfRange {
                    what: "link type",
                    value: u64::from(link_type),
                    range: "0 to 2147483647",
                },
            )
        })?;
        let dead = pcap::Capture::dead(pcap::Linktype(dlt))
            .map_err(|e| CaptureError::new(Subject::None, libpcap_kind(&e)))?;
        let program = dead
            .compile(expr, true)
            .map_err(|e| bpf_error(e.to_string()))?;
        Ok(BpfFilter {
            expr: expr.to_string(),
            link_type,
            program,
        })
    }

    /// Whether the packet (its captured bytes, starting at the link header)
    /// passes the filter.
    #[inline]
    pub fn matches(&self, data: &[u8]) -> bool {
        self.program.filter(data)
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The link type the program was compiled for.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }
}

/// One BPF expression, compiled on demand for each link type it meets.
///
/// The filter used last is kept at hand; the others wait in a short list
/// searched linearly, since a capture holds one or a few link types.
#[derive(Debug)]
pub struct BpfFilterSet {
    current: BpfFilter,
    others: Vec<BpfFilter>,
    /// Link types the expression does not compile for, with libpcap's
    /// message, so that a bad pairing is reported every time without
    /// compiling again.
    failed: Vec<(u32, String)>,
}

impl BpfFilterSet {
    /// Checks `expr` by compiling it for Ethernet, so that a typo is
    /// reported before any packet is read. An expression that only makes
    /// sense for other links (`wlan …`) is refused here; build it with
    /// [`for_link_type`](BpfFilterSet::for_link_type) instead.
    pub fn new(expr: &str) -> Result<BpfFilterSet, CaptureError> {
        BpfFilterSet::for_link_type(expr, LINKTYPE_ETHERNET)
    }

    /// Checks `expr` by compiling it for `link_type`.
    pub fn for_link_type(expr: &str, link_type: u32) -> Result<BpfFilterSet, CaptureError> {
        Ok(BpfFilterSet {
            current: BpfFilter::new(expr, link_type)?,
            others: Vec::new(),
            failed: Vec::new(),
        })
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        self.current.expr()
    }

    /// The filter compiled for `link_type`, compiling it on first use.
    ///
    /// Fails, naming the expression and link type, when libpcap cannot
    /// compile the expression for that link (for example `ether host …` on
    /// raw IP).
    pub fn filter_for(&mut self, link_type: u32) -> Result<&BpfFilter, CaptureError> {
        if self.current.link_type != link_type {
            if let Some(other) = self.others.iter_mut().find(|f| f.link_type == link_type) {
                std::mem::swap(&mut self.current, other);
            } else {
                if let Some((_, message)) = self.failed.iter().find(|(lt, _)| *lt == link_type) {
                    return Err(CaptureError::new(
                        Subject::None,
                        ErrorKind::Bpf {
                            expr: self.current.expr.clone(),
                            link_type,
                            message: message.clone(),
                        },
                    ));
                }
                let filter = match BpfFilter::new(&self.current.expr, link_type) {
                    Ok(filter) => filter,
                    Err(err) => {
                        if let ErrorKind::Bpf { message, .. } = err.kind() {
                            self.failed.push((link_type, message.clone()));
                        }
                        return Err(err);
                    }
                };
                let previous = std::mem::replace(&mut self.current, filter);
                self.others.push(previous);
            }
        }
        Ok(&self.current)
    }

    /// Whether a packet of `link_type` passes the filter.
    #[inline]
    pub fn matches(&mut self, link_type: u32, data: &[u8]) -> Result<bool, CaptureError> {
        Ok(self.filter_for(link_type)?.matches(data))
    }
}
