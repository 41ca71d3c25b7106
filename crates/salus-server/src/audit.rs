//! `salus audit verify` (and `cargo xtask audit verify`): walk the audit log's hash chain and
//! say where it breaks.

use salus_domain::audit::{ChainBreak, ChainReport};
use salus_store::Store;

/// What the operator reads.
pub fn describe(report: &ChainReport) -> String {
    match &report.first_break {
        None => format!(
            "audit log intact: {} entries, every hash and link verified",
            report.entries
        ),
        Some(ChainBreak::Edited { seq }) => format!(
            "audit log BROKEN at entry {seq}: its content does not match its hash (edited); \
             {} entries before it verified",
            report.entries
        ),
        Some(ChainBreak::Missing {
            expected_seq,
            found_seq,
        }) => format!(
            "audit log BROKEN at entry {expected_seq}: missing (the next entry is {found_seq}; \
             deleted entries); {} entries before it verified",
            report.entries
        ),
        Some(ChainBreak::Unlinked { seq }) => format!(
            "audit log BROKEN at entry {seq}: it does not link to the entry before it \
             (entries deleted or moved); {} entries before it verified",
            report.entries
        ),
    }
}

/// Verifies the chain, prints the finding; `Ok(false)` when it is broken.
///
/// # Errors
/// When the database cannot be read.
#[allow(clippy::print_stdout, reason = "an operator command reports on stdout")]
pub async fn verify(store: &Store) -> anyhow::Result<bool> {
    let report = store.verify_audit_chain().await?;
    println!("{}", describe(&report));
    Ok(report.first_break.is_none())
}
