//! FHIR R4 mapping for Salus. Pure functions: JSON in, domain values out; no I/O.
//!
//! [`import::map_bundle`] reads `transaction`, `batch` and `collection` bundles (as Synthea
//! and EHR exports write them) into an [`salus_domain::import::ImportDraft`].
//!
//! **Invariant:** FHIR is an exchange format here, never the domain model: nothing outside
//! this crate sees a FHIR structure.
//! **Invariant:** error messages name the entry index, the resource type and the element,
//! never a value from the bundle (values may be health data).

mod claims;
pub mod export;
pub mod import;
pub mod ips;
mod json;
mod resource;

pub use import::{BundleError, MapOptions, MappedBundle, Problem, map_bundle};
