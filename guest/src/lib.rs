//! The generic linkward policy evaluator.
//!
//! This crate is compiled twice. For `wasm32-unknown-unknown` it becomes the core of every
//! policy module: it exports the `linkward:policy` WIT world and holds no policy of its
//! own; the policy compiler gives it one by embedding a rule [`image::Image`]. Natively it
//! is an ordinary library, so hosts can evaluate the same image without a sandbox and
//! benchmarks can compare the two.
#![deny(unsafe_code)]

pub mod evaluate;
pub mod image;
pub mod matching;
pub mod packed;
pub mod record;
mod text;
pub mod vocab;

// The generated WIT glue lowers and lifts through raw pointers; nothing else is unsafe.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings;

pub use evaluate::Evaluator;
pub use image::Image;
pub use record::{DnsAnswer, Finding, Flow};

/// The version of the `linkward:policy` WIT package this evaluator implements.
pub const CONTRACT_VERSION: &str = "2.0.0";
