//! The linkward host: everything outside the sandbox.
#![forbid(unsafe_code)]

pub mod sandbox;
