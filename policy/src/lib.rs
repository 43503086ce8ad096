//! The linkward policy language and compiler.
//!
//! A policy is a TOML file (see `docs/policy-language.md`). Compiling runs these stages,
//! one module each, data flowing one way:
//!
//! 1. [`parse`] — TOML with the span of every key and value;
//! 2. [`validate`] — the typed, checked [`model::Policy`], or errors with file:line:column;
//! 3. [`lint`] — warnings about weak isolation and dead rules;
//! 4. [`compile`] — the compact rule [`linkward_guest::Image`] the evaluator runs;
//! 5. [`module`] — the image embedded in the generic guest, wrapped as a component.
//!
//! ```no_run
//! let source = std::fs::read_to_string("examples/fabrikam.toml").unwrap();
//! let compiled = linkward_policy::compile::compile_source("fabrikam.toml", &source, None).unwrap();
//! std::fs::write("fabrikam.wasm", &compiled.wasm).unwrap();
//! ```
#![forbid(unsafe_code)]

pub mod cases;
pub mod compile;
pub mod diagnostic;
pub mod lint;
pub mod model;
pub mod module;
pub mod parse;
pub mod servicetags;
pub mod validate;
