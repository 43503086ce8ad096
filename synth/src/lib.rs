/*!
Deterministic synthetic traffic for testing and benchmarking linkward.

A scanner is only as trustworthy as the captures it was tested on, and real captures of
healthcare networks cannot be shared. This crate builds the traffic instead, byte by
byte, the same on every run: whole frames with correct lengths and checksums, the DNS,
TLS and HTTP payloads that tell a scanner which service a flow is for, complete TCP
conversations, and capture files.

It has four layers, each usable alone:

* [`FrameBuilder`] builds one frame for a [`Link`] (Ethernet, 802.1Q, QinQ, Linux SLL
  and SLL2, raw IP, BSD loopback) carrying IPv4 or IPv6 and TCP or UDP;
* [`dns_query`], [`dns_response`] (with name compression), [`tls_client_hello`] and
  [`http_get`] build payloads;
* [`Conversation`], [`tcp_session`] and [`dns_exchange`] lay out whole exchanges as
  timed [`Frame`]s, and [`write_pcap`] / [`write_pcapng`] store them;
* [`generate`] streams a large realistic capture (millions of packets, constant memory)
  and says in a [`GenSummary`] what a correct scan of it finds; [`demo_frames`] is the
  small capture shipped with the examples.

# Example

A client resolves the FHIR service through its privatelink CNAME, then connects with
TLS; the frames go into a pcapng file.

```
use linkward_synth::{Link, dns_exchange, tcp_session, tls_client_hello, write_pcapng};

let client = "10.1.5.9:40000".parse().unwrap();
let resolver = "10.1.0.4:53".parse().unwrap();
let name = "fabrikam-records.fhir.azurehealthcareapis.com";
let mut frames = dns_exchange(
    Link::Vlan(120), client, resolver, name,
    &["fabrikam-records.privatelink.fhir.azurehealthcareapis.com"],
    &["10.1.2.5".parse().unwrap()], 300, 0,
)?;
let hello = tls_client_hello(Some(name))?;
frames.extend(tcp_session(
    Link::Vlan(120), "10.1.5.9:50000".parse().unwrap(), "10.1.2.5:443".parse().unwrap(),
    &hello, 10_000_000,
)?);
let dir = tempfile::tempdir().unwrap();
write_pcapng(&dir.path().join("lookup.pcapng"), &frames)?;
# Ok::<(), linkward_synth::SynthError>(())
```

# What it does not do

* It does not model a TCP stack: sequence numbers advance consistently, but there is
  no loss, retransmission or window behaviour.
* Frames are never fragmented; IPv4 packets carry don't-fragment.
* It makes well-formed traffic. Malformed inputs are made by cutting or editing what
  it builds (the capture writers write whatever they are given).
*/
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod demo;
mod error;
mod file;
mod frame;
mod generate;
mod payload;
mod session;

pub use demo::{DEMO_START_NS, DICOM_NAME, FHIR_NAME, FHIR_PRIVATELINK, demo_frames, demo_pcap};
pub use error::SynthError;
pub use file::{
    SNAPLEN, pcap_bytes, pcapng_bytes, write_pcap, write_pcap_to, write_pcapng, write_pcapng_to,
};
pub use frame::{Frame, FrameBuilder, Link, tcp_flags};
pub use generate::{ExpectedFindings, GenConfig, GenSummary, generate};
pub use payload::{
    TYPE_A, TYPE_AAAA, TYPE_CNAME, dns_query, dns_response, http_get, tls_client_hello,
};
pub use session::{Close, Conversation, dns_exchange, tcp_session};
