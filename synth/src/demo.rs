//! The demonstration capture shipped as `examples/fabrikam-demo.pcap`: a few
//! conversations that show, against `examples/fabrikam.toml`, one correct path and one
//! example of each common way to break the policy.

use crate::error::SynthError;
use crate::file::pcap_bytes;
use crate::frame::{Frame, Link};
use crate::payload::{http_get, tls_client_hello};
use crate::session::{Close, Conversation, dns_exchange};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// 2025-03-03T09:00:00Z: a fixed start, so the file's bytes never change.
pub const DEMO_START_NS: u64 = 1_740_992_400 * 1_000_000_000;

/// The FHIR service of the example policy.
pub const FHIR_NAME: &str = "fabrikam-records.fhir.azurehealthcareapis.com";
/// Its privatelink name.
pub const FHIR_PRIVATELINK: &str = "fabrikam-records.privatelink.fhir.azurehealthcareapis.com";
/// The DICOM service of the example policy.
pub const DICOM_NAME: &str = "fabrikam-imaging.dicom.azurehealthcareapis.com";

fn sock(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
}

/// The frames of the demonstration capture (Ethernet), in time order:
///
/// 1. `10.1.5.9` looks up the FHIR service through its privatelink CNAME, gets
///    `10.1.2.5`, and connects there with TLS: no finding.
/// 2. `10.1.5.20` gets the public answer `20.37.1.10` for the same name
///    (dns-public-resolution) and connects there with that SNI (pe-bypass).
/// 3. `192.168.7.7` sends an HTTP request with Host `fabrikam-imaging.dicom…` to the
///    DICOM endpoint `10.1.2.6:80` (origin-not-allowed).
/// 4. `10.1.4.4` opens SMB to `10.1.9.9:445` (rule `no-smb`).
/// 5. The service range `20.37.5.5` connects to `evil.example.net` at
///    `198.51.100.66:443` (untrusted-outbound).
/// 6. `20.37.5.5` reaches the application `10.1.3.3:443`, allowed only through the
///    service tag (service-tag-reliance).
///
/// Connections close with a FIN exchange, except the SMB one, which the client resets.
pub fn demo_frames() -> Result<Vec<Frame>, SynthError> {
    let link = Link::Ethernet;
    let second = 1_000_000_000u64;
    let resolver = sock([10, 1, 0, 4], 53);
    let reply: Vec<u8> = (0..700u32).map(|i| (i * 13 % 256) as u8).collect();
    let mut frames = Vec::new();

    let fhir_private = [IpAddr::V4(Ipv4Addr::new(10, 1, 2, 5))];
    frames.extend(dns_exchange(
        link,
        sock([10, 1, 5, 9], 40_001),
        resolver,
        FHIR_NAME,
        &[FHIR_PRIVATELINK],
        &fhir_private,
        300,
        DEMO_START_NS,
    )?);
    frames.extend(
        Conversation::new(link, sock([10, 1, 5, 9], 50_000), sock([10, 1, 2, 5], 443))
            .request(&tls_client_hello(Some(FHIR_NAME))?)
            .reply(&reply)
            .start_ns(DEMO_START_NS + second / 10)
            .frames()?,
    );

    let fhir_public = [IpAddr::V4(Ipv4Addr::new(20, 37, 1, 10))];
    frames.extend(dns_exchange(
        link,
        sock([10, 1, 5, 20], 40_002),
        resolver,
        FHIR_NAME,
        &[],
        &fhir_public,
        300,
        DEMO_START_NS + second,
    )?);
    frames.extend(
        Conversation::new(
            link,
            sock([10, 1, 5, 20], 50_001),
            sock([20, 37, 1, 10], 443),
        )
        .request(&tls_client_hello(Some(FHIR_NAME))?)
        .reply(&reply)
        .start_ns(DEMO_START_NS + second + second / 10)
        .frames()?,
    );

    frames.extend(
        Conversation::new(
            link,
            sock([192, 168, 7, 7], 50_002),
            sock([10, 1, 2, 6], 80),
        )
        .request(&http_get(DICOM_NAME, "/v1/studies?PatientID=12345"))
        .reply(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        .start_ns(DEMO_START_NS + 2 * second)
        .frames()?,
    );

    // An SMB2 NEGOTIATE request header behind its NetBIOS session length.
    let mut smb = vec![0x00, 0x00, 0x00, 0x44, 0xfe, b'S', b'M', b'B', 0x40, 0x00];
    smb.resize(0x48, 0);
    frames.extend(
        Conversation::new(link, sock([10, 1, 4, 4], 50_003), sock([10, 1, 9, 9], 445))
            .request(&smb)
            .close(Close::Reset)
            .start_ns(DEMO_START_NS + 3 * second)
            .frames()?,
    );

    frames.extend(
        Conversation::new(
            link,
            sock([20, 37, 5, 5], 50_004),
            sock([198, 51, 100, 66], 443),
        )
        .request(&tls_client_hello(Some("evil.example.net"))?)
        .reply(&reply)
        .start_ns(DEMO_START_NS + 4 * second)
        .frames()?,
    );

    frames.extend(
        Conversation::new(link, sock([20, 37, 5, 5], 50_005), sock([10, 1, 3, 3], 443))
            .request(&tls_client_hello(Some("app.fabrikam.example"))?)
            .reply(&reply)
            .start_ns(DEMO_START_NS + 5 * second)
            .frames()?,
    );
    Ok(frames)
}

/// The bytes of `examples/fabrikam-demo.pcap`: [`demo_frames`] as a classic pcap.
pub fn demo_pcap() -> Result<Vec<u8>, SynthError> {
    pcap_bytes(Link::Ethernet, &demo_frames()?)
}
