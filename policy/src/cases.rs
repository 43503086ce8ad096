//! Test cases as data: a flow or a DNS answer and the finding kinds it must produce.
//!
//! The same form serves two places: case files run by `linkward test POLICY CASES.toml`
//! (`[[case]]` tables, read by [`parse_cases`]) and the `[[self-test]]` tables of a policy,
//! which the compiler embeds in the module so a host can check a module before trusting it.
//!
//! ```toml
//! [[case]]
//! name = "client bypasses the private endpoint"
//! flow = { src = "10.1.5.9", dst = "20.37.1.10", dst-port = 443, sni = "fabrikam-records.fhir.azurehealthcareapis.com" }
//! expect = ["pe-bypass"]
//!
//! [[case]]
//! name = "public DNS path"
//! dns = { client = "10.1.5.9", query = "fabrikam-records.fhir.azurehealthcareapis.com", addresses = ["20.37.1.10"] }
//! expect = ["dns-public-resolution"]
//! ```
//!
//! `expect` lists finding kinds exactly, in any order; an empty list means the input must
//! produce no finding at all.

use crate::diagnostic::Diagnostic;
use crate::parse::{self, Reader, Table};
use linkward_guest::record::{OwnedDnsAnswer, OwnedFlow, TestCase, TestInput};
use linkward_guest::vocab::FindingKind;
use serde_spanned::Spanned;
use std::collections::HashMap;
use std::net::IpAddr;
use toml::de::DeValue;

const CASE_KEYS: &[&str] = &["name", "flow", "dns", "expect"];
const FLOW_KEYS: &[&str] = &[
    "src",
    "dst",
    "src-port",
    "dst-port",
    "protocol",
    "resolved-name",
    "cname-chain",
    "sni",
    "http-host",
    "source",
    "denied-by-nsg",
];
const DNS_KEYS: &[&str] = &[
    "client",
    "server",
    "query",
    "cname-chain",
    "addresses",
    "ttl",
];

/// Reads a case file: `[[case]]` tables and nothing else.
///
/// All problems of the file are reported together, each with its location; a file with
/// any problem yields no cases, so a typo can never silently drop a case.
pub fn parse_cases(file_name: &str, text: &str) -> Result<Vec<TestCase>, Vec<Diagnostic>> {
    let mut reader = Reader::new(file_name, text);
    let Some(document) = parse::parse_document(&mut reader, text) else {
        return Err(reader.into_diagnostics());
    };
    let root = Table::new(&document, 0..0, "the case file".to_owned());
    root.check_keys(&mut reader, &["case"]);
    let tables = root.tables(&mut reader, "case");
    let cases = read_cases(&mut reader, &tables);
    if reader.has_errors() {
        let mut diagnostics = reader.into_diagnostics();
        diagnostics.sort_by_key(|d| d.location);
        Err(diagnostics)
    } else {
        Ok(cases)
    }
}

/// Reads case tables (`[[case]]` or `[[self-test]]`), reporting duplicate names, also
/// between cases that have other problems.
pub(crate) fn read_cases(reader: &mut Reader<'_>, tables: &[Table<'_, '_>]) -> Vec<TestCase> {
    let mut seen: HashMap<String, crate::model::Location> = HashMap::new();
    let mut cases = Vec::new();
    for table in tables {
        let case = read_case(reader, table);
        if let Some((_, value)) = table.get("name")
            && let DeValue::String(name) = value.get_ref()
        {
            let name = name.trim();
            if let Some(first) = seen.get(name) {
                reader.error(
                    "duplicate-case",
                    &value.span(),
                    format!(
                        "duplicate case name `{name}`: first used on line {}",
                        first.line
                    ),
                );
                continue;
            }
            seen.insert(name.to_owned(), reader.location(&value.span()));
        }
        cases.extend(case);
    }
    cases
}

fn read_case(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> Option<TestCase> {
    table.check_keys(reader, CASE_KEYS);
    let name = table.required_string(reader, "name", "\"what the case shows\"");
    let flow = table.table(reader, "flow");
    let dns = table.table(reader, "dns");
    let input = match (flow, dns) {
        (Some(flow), None) => read_flow(reader, &flow).map(TestInput::Flow),
        (None, Some(dns)) => read_dns(reader, &dns).map(TestInput::Dns),
        (Some(_), Some(dns)) => {
            reader.error_expected(
                "bad-case",
                dns.span(),
                format!("{} has both `flow` and `dns`", table.name),
                "exactly one of `flow` and `dns`",
            );
            None
        }
        (None, None) => {
            // A `flow`/`dns` of the wrong type was reported already; only report absence.
            if table.get("flow").is_none() && table.get("dns").is_none() {
                reader.error_expected(
                    "missing-key",
                    table.span(),
                    format!("{} has neither `flow` nor `dns`", table.name),
                    "`flow = { … }` or `dns = { … }`",
                );
            }
            None
        }
    };
    let expect = read_expect(reader, table);
    Some(TestCase {
        name: name?.into_inner().trim().to_owned(),
        input: input?,
        expect: expect?,
    })
}

fn read_expect(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> Option<Vec<FindingKind>> {
    let ids: Vec<&str> = FindingKind::ALL.iter().map(|k| k.id()).collect();
    let expected = format!("`expect = [ … ]` with {}", parse::one_of(&ids));
    table.required(reader, "expect", &expected)?;
    let (_, items) = table.string_array(reader, "expect")?;
    let mut kinds = Vec::new();
    let mut ok = true;
    for item in &items {
        match parse::enum_value(reader, "finding kind", item, &ids, FindingKind::from_id) {
            Some(kind) => kinds.push(kind),
            None => ok = false,
        }
    }
    ok.then_some(kinds)
}

fn read_flow(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> Option<OwnedFlow> {
    use linkward_guest::record::protocol::TCP;
    table.check_keys(reader, FLOW_KEYS);
    let src = required_ip(reader, table, "src");
    let dst = required_ip(reader, table, "dst");
    let src_port = port(reader, table, "src-port");
    let dst_port = port(reader, table, "dst-port");
    let protocol = match table.get("protocol") {
        Some((_, value)) => {
            parse::protocol(reader, "protocol", value, false).map(|p| p.unwrap_or(TCP))
        }
        None => Some(TCP),
    };
    let resolved_name = optional_host(reader, table, "resolved-name");
    let cname_chain = host_list(reader, table, "cname-chain");
    let sni = optional_host(reader, table, "sni");
    let http_host = optional_host(reader, table, "http-host");
    let from_flow_log = match table.string(reader, "source") {
        Some(source) => parse::enum_value(
            reader,
            "source",
            &source,
            &["packets", "flow-log"],
            |s| match s {
                "packets" => Some(false),
                "flow-log" => Some(true),
                _ => None,
            },
        ),
        None if table.get("source").is_some() => None,
        None => Some(false),
    };
    let denied_by_nsg = match table.get("denied-by-nsg") {
        Some(_) => table
            .boolean(reader, "denied-by-nsg")
            .map(Spanned::into_inner),
        None => Some(false),
    };
    Some(OwnedFlow {
        src: Some(src?),
        dst: Some(dst?),
        src_port: src_port?,
        dst_port: dst_port?,
        protocol: protocol?,
        from_flow_log: from_flow_log?,
        denied_by_nsg: denied_by_nsg?,
        resolved_name: resolved_name?,
        cname_chain: cname_chain?,
        sni: sni?,
        http_host: http_host?,
        ..OwnedFlow::default()
    })
}

fn read_dns(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> Option<OwnedDnsAnswer> {
    table.check_keys(reader, DNS_KEYS);
    let client = required_ip(reader, table, "client");
    let server = match table.string(reader, "server") {
        Some(text) => parse::ip_addr(reader, "server", &text).map(Some),
        None if table.get("server").is_some() => None,
        None => Some(None),
    };
    let query = table
        .required_string(reader, "query", "\"name.example.com\"")
        .and_then(|q| parse::host_name(reader, "query", &q, false));
    let cname_chain = host_list(reader, table, "cname-chain");
    let addresses = match table.string_array(reader, "addresses") {
        Some((_, items)) => {
            let parsed: Vec<Option<IpAddr>> = items
                .iter()
                .map(|item| parse::ip_addr(reader, "addresses", item))
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        }
        None if table.get("addresses").is_some() => None,
        None => Some(Vec::new()),
    };
    let ttl = match table.get("ttl") {
        Some((_, value)) => {
            match parse::as_integer(reader, "ttl", value, "seconds, 0-4294967295") {
                Some(Ok(n)) => match u32::try_from(n) {
                    Ok(ttl) => Some(ttl),
                    Err(_) => {
                        reader.error(
                            "bad-ttl",
                            &value.span(),
                            format!("`ttl` {n} is out of range"),
                        );
                        None
                    }
                },
                Some(Err(())) => {
                    reader.error("bad-ttl", &value.span(), "`ttl` is out of range".to_owned());
                    None
                }
                None => None,
            }
        }
        None => Some(0),
    };
    Some(OwnedDnsAnswer {
        client: Some(client?),
        server: server?,
        query: query?,
        cname_chain: cname_chain?,
        addresses: addresses?,
        ttl: ttl?,
        timestamp_ns: 0,
    })
}

fn required_ip(reader: &mut Reader<'_>, table: &Table<'_, '_>, key: &str) -> Option<IpAddr> {
    let text = table.required_string(reader, key, "\"10.1.5.9\"")?;
    parse::ip_addr(reader, key, &text)
}

/// A single port (`0` when absent). Flows have one port per side, so ranges are refused.
fn port(reader: &mut Reader<'_>, table: &Table<'_, '_>, key: &str) -> Option<u16> {
    let Some((_, value)) = table.get(key) else {
        return Some(0);
    };
    if !matches!(value.get_ref(), DeValue::Integer(_)) {
        parse::wrong_type(
            reader,
            key,
            value,
            value.get_ref(),
            "an integer",
            "a port 0-65535",
        );
        return None;
    }
    parse::port_range(reader, key, value).map(|range| range.first)
}

/// An optional host name: `Some(None)` when absent, `None` when rejected.
fn optional_host(
    reader: &mut Reader<'_>,
    table: &Table<'_, '_>,
    key: &str,
) -> Option<Option<String>> {
    match table.string(reader, key) {
        Some(text) => parse::host_name(reader, key, &text, false).map(Some),
        None if table.get(key).is_some() => None,
        None => Some(None),
    }
}

/// An optional list of host names (empty when absent), `None` when any was rejected.
fn host_list(reader: &mut Reader<'_>, table: &Table<'_, '_>, key: &str) -> Option<Vec<String>> {
    match table.string_array(reader, key) {
        Some((_, items)) => {
            let parsed: Vec<Option<String>> = items
                .iter()
                .map(|item| parse::host_name(reader, key, item, false))
                .collect();
            parsed.into_iter().collect()
        }
        None if table.get(key).is_some() => None,
        None => Some(Vec::new()),
    }
}
