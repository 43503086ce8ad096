//! Azure's published service tag file (`ServiceTags_Public_YYYYMMDD.json`).
//!
//! A policy may take its service tag ranges from that file (`[service-tags] file = …`)
//! instead of copying them inline, so that a weekly download is all it takes to follow
//! Microsoft's changes. Only `values[].name` and `values[].properties.addressPrefixes` are
//! read; every other field is ignored, so newer files with more fields still load.
//!
//! Prefixes in the file are taken as published: a prefix with host bits set is reduced to
//! its network rather than refused, since a policy author cannot fix Microsoft's file.

use ipnet::IpNet;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One tag of the file and its address ranges, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRanges {
    pub name: String,
    pub ranges: Vec<IpNet>,
}

/// Why a service tag file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ServiceTagsError {
    #[error("cannot read service tag file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not an Azure service tag file: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{}: values[{value_index}] (`{tag}`): addressPrefixes[{prefix_index}] `{prefix}` is not a CIDR",
        path.display()
    )]
    BadPrefix {
        path: PathBuf,
        value_index: usize,
        tag: String,
        prefix_index: usize,
        prefix: String,
    },
    #[error("{}: values[{value_index}] has an empty tag name", path.display())]
    EmptyName { path: PathBuf, value_index: usize },
}

#[derive(Deserialize)]
struct File {
    values: Vec<Value>,
}

#[derive(Deserialize)]
struct Value {
    name: String,
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(rename = "addressPrefixes")]
    address_prefixes: Vec<String>,
}

/// Reads and parses the service tag file at `path`.
pub fn load(path: &Path) -> Result<Vec<TagRanges>, ServiceTagsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServiceTagsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses the text of a service tag file; `path` only names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<TagRanges>, ServiceTagsError> {
    let file: File = serde_json::from_str(text).map_err(|e| ServiceTagsError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: without_position(&e.to_string()),
    })?;
    file.values
        .into_iter()
        .enumerate()
        .map(|(value_index, value)| {
            if value.name.trim().is_empty() {
                return Err(ServiceTagsError::EmptyName {
                    path: path.to_owned(),
                    value_index,
                });
            }
            let ranges = value
                .properties
                .address_prefixes
                .iter()
                .enumerate()
                .map(|(prefix_index, prefix)| {
                    prefix
                        .trim()
                        .parse::<IpNet>()
                        .map(|net| net.trunc())
                        .map_err(|_| ServiceTagsError::BadPrefix {
                            path: path.to_owned(),
                            value_index,
                            tag: value.name.clone(),
                            prefix_index,
                            prefix: prefix.clone(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TagRanges {
                name: value.name,
                ranges,
            })
        })
        .collect()
}

/// serde_json ends its messages with " at line L column C", which the error already says.
fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => message.to_owned(),
    }
}
