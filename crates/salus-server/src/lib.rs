//! The Salus server as a library: configuration, logging, the assembled web application,
//! importing files, and the demo/synthetic data used by `salus serve --demo` and xtask.
//!
//! **Invariant:** this is the only crate (with xtask) that knows every adapter; it wires
//! them to the domain and holds no rules of its own.

pub mod adapters;
pub mod app;
pub mod audit;
pub mod config;
pub mod demo;
pub mod importer;
pub mod limit;
pub mod sandbox;
pub mod smtp;
pub mod synthetic;
pub mod telemetry;

pub use app::app;
pub use config::Config;
