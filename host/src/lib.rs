//! The linkward host: everything outside the sandbox.
//!
//! Data flows one way: input → decode → [`track`] (flows, DNS) → [`evaluation`] (batches
//! into the [`sandbox`]) → [`report`] sinks. [`scan::PacketScanner`] is that pipeline for
//! one worker; the command line and appliance integrations both drive it.
#![forbid(unsafe_code)]

pub mod evaluation;
pub mod report;
pub mod sandbox;
pub mod scan;
pub mod subject;
pub mod track;
