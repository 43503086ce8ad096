//! Live capture on the loopback interface. Needs root or CAP_NET_RAW; the
//! test says so and passes when the permission is missing.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use linkward_capture::{ErrorKind, LiveCapture, LiveOptions};

fn open_loopback(bpf: Option<String>) -> Option<LiveCapture> {
    let options = LiveOptions {
        timeout_ms: 50,
        bpf,
        ..LiveOptions::default()
    };
    match LiveCapture::open("lo", options) {
        Ok(capture) => Some(capture),
        Err(err) if matches!(err.kind(), ErrorKind::PermissionDenied { .. }) => {
            eprintln!("skipped: no permission to capture on lo ({err})");
            None
        }
        Err(err) if err.to_string().contains("No such device") => {
            eprintln!("skipped: no loopback interface named lo ({err})");
            None
        }
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn loopback_sees_a_udp_datagram_and_times_out_when_quiet() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let filter = format!("udp and dst port {port}");
    let Some(mut capture) = open_loopback(Some(filter)) else {
        return;
    };
    assert_eq!(capture.interface(), "lo");
    // Loopback on Linux presents Ethernet headers.
    assert_eq!(capture.link_type(), 1);

    // Nothing has been sent: the read times out with Ok(None).
    let started = Instant::now();
    assert!(capture.next_packet().unwrap().is_none());
    assert!(started.elapsed() < Duration::from_secs(5));

    let message = b"linkward live capture test";
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(message, ("127.0.0.1", port)).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while Instant::now() < deadline {
        if let Some(packet) = capture.next_packet().unwrap()
            && packet.data.ends_with(message)
        {
            seen = Some((
                packet.number,
                packet.data.len(),
                packet.orig_len,
                packet.ts_ns,
            ));
            break;
        }
    }
    let (number, len, orig_len, ts_ns) = seen.expect("datagram not captured within 10 s");
    assert_eq!(number, 1);
    // Ethernet 14 + IPv4 20 + UDP 8 + payload.
    assert_eq!(len, 14 + 20 + 8 + message.len());
    assert_eq!(orig_len as usize, len);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        ts_ns <= now_ns && now_ns - ts_ns < 60_000_000_000,
        "timestamp {ts_ns} vs now {now_ns}"
    );

    let stats = capture.stats().unwrap();
    assert!(stats.received >= 1, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    let mut buf = [0u8; 64];
    assert_eq!(receiver.recv(&mut buf).unwrap(), message.len());
}

#[test]
fn a_bad_live_filter_is_named() {
    let Some(_) = open_loopback(None) else {
        return;
    };
    let options = LiveOptions {
        bpf: Some("udp and and".to_string()),
        ..LiveOptions::default()
    };
    let err = LiveCapture::open("lo", options).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Bpf { expr, .. } if expr == "udp and and"),
        "{err}"
    );
    assert_eq!(err.interface_name(), Some("lo"));
    assert!(
        err.to_string()
            .starts_with("interface lo: filter \"udp and and\" does not compile"),
        "{err}"
    );
}

#[test]
fn an_unknown_interface_is_an_error() {
    let err = LiveCapture::open("no-such-if0", LiveOptions::default()).unwrap_err();
    assert_eq!(err.interface_name(), Some("no-such-if0"));
    assert!(
        err.to_string().starts_with("interface no-such-if0: "),
        "{err}"
    );
}
