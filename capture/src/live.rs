//! Live capture from a network interface through libpcap.
//!
//! Reading returns `Ok(None)` when the read timeout expires with no packet,
//! so a caller that batches work can flush on a clock even when the link is
//! quiet.

use std::time::{Duration, Instant};

use crate::error::{CaptureError, ErrorKind, Subject, libpcap_kind};
use crate::libpcap::timeval_ns;

/// Settings for [`LiveCapture::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Bytes kept of each packet. 262144 keeps whole packets on any
    /// ordinary link, offloaded (GRO/TSO-sized) ones included.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode, to see traffic not addressed
    /// to this host (a mirror port).
    pub promisc: bool,
    /// Deliver each packet as soon as it arrives instead of filling a
    /// kernel buffer first: lower latency, more wakeups.
    pub immediate: bool,
    /// Kernel ring buffer size in bytes; packets are dropped when it fills.
    pub buffer_size: u32,
    /// How long a read waits for packets, in milliseconds, before
    /// [`LiveCapture::next_packet`] returns `Ok(None)`. 0 waits forever.
    pub timeout_ms: u32,
    /// A BPF expression applied in the kernel, if any.
    pub bpf: Option<String>,
}

impl Default for LiveOptions {
    /// Whole packets, no promiscuous mode, immediate delivery, an 8 MiB
    /// buffer, a 100 ms timeout and no filter.
    fn default() -> LiveOptions {
        LiveOptions {
            snaplen: 262_144,
            promisc: false,
            immediate: true,
            buffer_size: 8 << 20,
            timeout_ms: 100,
            bpf: None,
        }
    }
}

/// A packet from a live capture, borrowed from the capture until the next
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivePacket<'a> {
    /// 1-based count of packets read from this capture.
    pub number: u64,
    /// Capture time in nanoseconds since the Unix epoch (microsecond
    /// precision: libpcap's default, available on every platform).
    pub ts_ns: u64,
    /// The `LINKTYPE_` number of the interface.
    pub link_type: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}

/// Counters libpcap keeps for a live capture, since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveStats {
    /// Packets the capture received (on Linux: passed the filter).
    pub received: u32,
    /// Packets dropped because the buffer was full.
    pub dropped: u32,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u32,
}

/// An open live capture on one interface.
///
/// The capture runs in non-blocking mode and [`next_packet`] waits on the
/// capture descriptor itself, because libpcap's own read timeout does not
/// start until a first packet arrives on Linux, which would leave a quiet
/// link blocking forever. Each packet is copied once into a buffer the
/// capture reuses; at live rates the copy costs far less than the system
/// call that fetched it.
///
/// [`next_packet`]: LiveCapture::next_packet
pub struct LiveCapture {
    name: String,
    capture: pcap::Capture<pcap::Active>,
    link_type: u32,
    timeout: Option<Duration>,
    number: u64,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.name)
            .field("link_type", &self.link_type)
            .field("timeout", &self.timeout)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl LiveCapture {
    /// Opens `interface` (for example `eth0`, `lo`, `any`) for capture.
    ///
    /// Capturing needs root or `CAP_NET_RAW`; without them the error kind is
    /// [`ErrorKind::PermissionDenied`]. A filter that does not compile fails
    /// with [`ErrorKind::Bpf`].
    pub fn open(interface: &str, options: LiveOptions) -> Result<LiveCapture, CaptureError> {
        let subject = || Subject::Interface(interface.to_string());
        let fail = |kind| CaptureError::new(subject(), kind);
        let to_i32 = |what, value: u32| {
            i32::try_from(value).map_err(|_| {
                fail(ErrorKind::OutOfRange {
                    what,
                    value: u64::from(value),
                    range: "0 to 2147483647",
                })
            })
        };
        let snaplen = to_i32("snaplen", options.snaplen)?;
        let buffer_size = to_i32("buffer size", options.buffer_size)?;
        // libpcap's timeout still bounds how long the kernel holds a
        // partly filled buffer when immediate mode is off.
        let timeout_ms = to_i32("timeout", options.timeout_ms)?;
        let inactive = pcap::Capture::from_device(interface).map_err(|e| fail(libpcap_kind(&e)))?;
        let mut capture = inactive
            .snaplen(snaplen)
            .promisc(options.promisc)
            .immediate_mode(options.immediate)
            .buffer_size(buffer_size)
            .timeout(timeout_ms)
            .open()
            .map_err(|e| fail(libpcap_kind(&e)))?;
        let link_type = crate::linktype::from_dlt(capture.get_datalink().0);
        if let Some(expr) = &options.bpf {
            capture.filter(expr, true).map_err(|e| {
                fail(ErrorKind::Bpf {
                    expr: expr.clone(),
                    link_type,
                    message: e.to_string(),
                })
            })?;
        }
        #[cfg(unix)]
        let capture = capture.setnonblock().map_err(|e| fail(libpcap_kind(&e)))?;
        let timeout = match options.timeout_ms {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        };
        Ok(LiveCapture {
            name: interface.to_string(),
            capture,
            link_type,
            timeout,
            number: 0,
            buffer: Vec::new(),
        })
    }

    /// The interface name given to [`open`](LiveCapture::open).
    pub fn interface(&self) -> &str {
        &self.name
    }

    /// The `LINKTYPE_` number of the interface.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    fn error(&self, err: &pcap::Error) -> CaptureError {
        CaptureError::new(Subject::Interface(self.name.clone()), libpcap_kind(err))
            .at_packet(self.number.saturating_add(1))
    }

    /// Waits for the next packet; `Ok(None)` when
    /// [`timeout_ms`](LiveOptions::timeout_ms) passed first.
    pub fn next_packet(&mut self) -> Result<Option<LivePacket<'_>>, CaptureError> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let header = loop {
            match self.capture.next_packet() {
                Ok(packet) => {
                    self.buffer.clear();
                    self.buffer.extend_from_slice(packet.data);
                    break *packet.header;
                }
                // In non-blocking mode: nothing buffered right now.
                Err(pcap::Error::TimeoutExpired) => {}
                Err(e) => return Err(self.error(&e)),
            }
            let remaining = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            self.wait_readable(remaining)?;
        };
        self.number = self.number.saturating_add(1);
        #[allow(clippy::useless_conversion, reason = "time_t is i32 on some targets")]
        let ts_ns = timeval_ns(
            i64::from(header.ts.tv_sec),
            i64::from(header.ts.tv_usec),
            1_000,
        );
        Ok(Some(LivePacket {
            number: self.number,
            ts_ns,
            link_type: self.link_type,
            data: &self.buffer,
            orig_len: header.len,
        }))
    }

    /// Sleeps until the capture descriptor is readable or `timeout` passes.
    #[cfg(unix)]
    fn wait_readable(&self, timeout: Option<Duration>) -> Result<(), CaptureError> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let limit = timeout.map(|t| {
            Timespec::try_from(t).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            })
        });
        let mut fds = [PollFd::new(&self.capture, PollFlags::IN)];
        match poll(&mut fds, limit.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(errno) => Err(CaptureError::new(
                Subject::Interface(self.name.clone()),
                ErrorKind::Libpcap {
                    message: format!("waiting for packets: {}", std::io::Error::from(errno)),
                },
            )),
        }
    }

    /// Without a descriptor to wait on, libpcap's blocking read with its
    /// own timeout does the waiting.
    #[cfg(not(unix))]
    fn wait_readable(&self, _timeout: Option<Duration>) -> Result<(), CaptureError> {
        Ok(())
    }

    /// The kernel's counters for this capture.
    pub fn stats(&mut self) -> Result<LiveStats, CaptureError> {
        let stats = self.capture.stats().map_err(|e| {
            CaptureError::new(Subject::Interface(self.name.clone()), libpcap_kind(&e))
        })?;
        Ok(LiveStats {
            received: stats.received,
            dropped: stats.dropped,
            if_dropped: stats.if_dropped,
        })
    }
}
