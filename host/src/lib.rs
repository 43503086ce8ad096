//! The linkward host: everything outside the sandbox.
//!
//! Data flows one way: input → decode → [`track`] (flows, DNS) → [`evaluation`] (batches
//! into the [`sandbox`]) → [`report`] sinks. [`pipeline::Pipeline`] is that pipeline for
//! one worker; the command line and appliance integrations both drive it.
// One exception, in `sandbox::cache`: mapping a compiled module that an earlier run
// stored is `unsafe` in wasmtime's API (see the safety comment there).
#![deny(unsafe_code)]

pub mod evaluation;
pub mod flowlogs;
pub mod metrics;
pub mod pipeline;
pub mod report;
pub mod sandbox;
pub mod signing;
pub mod subject;
pub mod swap;
pub mod track;
pub mod watch;
