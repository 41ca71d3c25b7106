//! Statements from a practice-management system's export: a CSV file of one row per line
//! item, grouped into statements by their number. Every row is checked and every problem is
//! reported by row and column; nothing is stored unless every row is good.

use super::money::Money;
use super::service::{BillingError, BillingService};
use super::statement::{LineItem, Statement};
use crate::access::Actor;
use crate::audit::{BillingStep, Outcome};
use crate::ids::{PatientId, StatementId};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};

/// The columns of the file, in any order, named in its first row.
pub const COLUMNS: [&str; 10] = [
    "mrn",
    "statement_number",
    "issued",
    "due",
    "service_date",
    "description",
    "charge",
    "insurance_paid",
    "adjustments",
    "patient_share",
];

/// The most rows one file may have.
pub const MAX_ROWS: usize = 10_000;

/// The most problems one report lists (the count says how many there were).
const MAX_PROBLEMS: usize = 200;

/// One problem of the file: its row (the header is row 1), the column, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub row: usize,
    pub column: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// What an import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub statements: usize,
    pub lines: usize,
}

/// A line item as read, with its row.
struct Row {
    row: usize,
    mrn: String,
    number: String,
    issued: NaiveDate,
    due: NaiveDate,
    item: LineItem,
}

fn problem(row: usize, column: &'static str, code: &'static str, message: &str) -> RowProblem {
    RowProblem {
        row,
        column,
        code,
        message: message.to_owned(),
    }
}

impl BillingService {
    /// Imports the statements of a CSV file (see [`COLUMNS`]) into the organisation's
    /// accounts: all of them, in one transaction, or — when any row is bad — none, with every
    /// problem by row and column (`BillingError::Rows`).
    ///
    /// # Errors
    /// `Forbidden` for anyone but billing staff and administrators; `Rows`.
    pub async fn import_statements(
        &self,
        actor: &Actor,
        text: &str,
        request_id: Option<&str>,
    ) -> Result<ImportReport, BillingError> {
        let organization = self.keeper(actor)?;
        let currency = self.settings_of(organization).await?.currency;
        let mut problems = Vec::new();
        let mut rows = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(text.as_bytes());
        let header: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(str::to_ascii_lowercase).collect(),
            Err(_) => {
                return Err(BillingError::Rows(vec![problem(
                    1,
                    "header",
                    "invalid_csv",
                    "The first row must name the columns.",
                )]));
            }
        };
        let mut at = HashMap::new();
        for column in COLUMNS {
            match header.iter().position(|h| h == column) {
                Some(i) => {
                    at.insert(column, i);
                }
                None => problems.push(problem(
                    1,
                    column,
                    "missing_column",
                    "The first row must name this column.",
                )),
            }
        }
        if !problems.is_empty() {
            return Err(BillingError::Rows(problems));
        }
        let mut charts: HashMap<String, Option<PatientId>> = HashMap::new();
        for (i, record) in reader.records().enumerate() {
            let row = i + 2;
            if rows.len() >= MAX_ROWS {
                problems.push(problem(
                    row,
                    "row",
                    "too_many_rows",
                    "A file may have at most 10,000 rows; split it.",
                ));
                break;
            }
            let record = match record {
                Ok(r) => r,
                Err(_) => {
                    problems.push(problem(
                        row,
                        "row",
                        "invalid_csv",
                        "This row is not CSV with one value per column.",
                    ));
                    continue;
                }
            };
            let field = |c: &str| record.get(at[c]).unwrap_or_default().to_owned();
            let before = problems.len();
            let date = |c: &'static str, problems: &mut Vec<RowProblem>| {
                NaiveDate::parse_from_str(&field(c), "%Y-%m-%d")
                    .map_err(|_| {
                        problems.push(problem(
                            row,
                            c,
                            "invalid_date",
                            "Give the date as YYYY-MM-DD.",
                        ));
                    })
                    .ok()
            };
            let (issued, due, service_date) = (
                date("issued", &mut problems),
                date("due", &mut problems),
                date("service_date", &mut problems),
            );
            let mut money = |c: &'static str| {
                Money::parse(&field(c), currency)
                    .map_err(|e| problems.push(problem(row, c, e.code(), &e.to_string())))
                    .ok()
            };
            let amounts = (
                money("charge"),
                money("insurance_paid"),
                money("adjustments"),
                money("patient_share"),
            );
            let mrn = field("mrn");
            if !charts.contains_key(&mrn) {
                let found = match crate::text::Mrn::parse(&mrn) {
                    Ok(m) => self
                        .ports()
                        .patients
                        .find_by_mrn(organization, &m)
                        .await?
                        .map(|p| p.id),
                    Err(_) => None,
                };
                charts.insert(mrn.clone(), found);
            }
            if charts[&mrn].is_none() {
                problems.push(problem(
                    row,
                    "mrn",
                    "unknown_mrn",
                    "No patient of your organisation has this record number.",
                ));
            }
            if problems.len() > before {
                continue;
            }
            if let (
                Some(issued),
                Some(due),
                Some(service_date),
                (Some(charge), Some(insurance_paid), Some(adjustments), Some(patient_share)),
            ) = (issued, due, service_date, amounts)
            {
                rows.push(Row {
                    row,
                    mrn,
                    number: field("statement_number"),
                    issued,
                    due,
                    item: LineItem {
                        service_date,
                        description: field("description"),
                        charge,
                        insurance_paid,
                        adjustments,
                        patient_share,
                    },
                });
            }
        }
        // Rows of one number make one statement: one patient, one date and due date.
        let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for r in rows {
            groups.entry(r.number.clone()).or_default().push(r);
        }
        let mut statements = Vec::new();
        for (number, rows) in &groups {
            let first = &rows[0];
            for r in &rows[1..] {
                if r.mrn != first.mrn || r.issued != first.issued || r.due != first.due {
                    problems.push(problem(
                        r.row,
                        "statement_number",
                        "statement_disagrees",
                        "Rows of one statement number must have the same record number, date and due date.",
                    ));
                }
            }
            let statement = Statement {
                id: StatementId::generate(self.ports().ids.as_ref()),
                organization,
                patient: charts[&first.mrn].unwrap_or(PatientId::from_uuid(uuid::Uuid::nil())),
                number: number.clone(),
                issued: first.issued,
                due: first.due,
                currency,
                items: rows.iter().map(|r| r.item.clone()).collect(),
            };
            if let Err(e) = statement.check() {
                let (row, column) = match e {
                    super::StatementProblem::DoesNotAddUp { line }
                    | super::StatementProblem::Negative { line } => (rows[line - 1].row, "charge"),
                    super::StatementProblem::Description { line } => {
                        (rows[line - 1].row, "description")
                    }
                    super::StatementProblem::Number => (first.row, "statement_number"),
                    super::StatementProblem::DueBeforeIssued => (first.row, "due"),
                    _ => (first.row, "row"),
                };
                let message = e.to_string();
                let message = message
                    .split_once(": ")
                    .filter(|(head, _)| head.starts_with("Line "))
                    .map_or(message.as_str(), |(_, rest)| rest);
                problems.push(problem(row, column, e.code(), message));
            }
            statements.push(statement);
        }
        let numbers: Vec<String> = groups.keys().cloned().collect();
        for taken in self
            .ports()
            .billing
            .existing_numbers(organization, &numbers)
            .await?
        {
            if let Some(rows) = groups.get(&taken) {
                problems.push(problem(
                    rows[0].row,
                    "statement_number",
                    "statement_exists",
                    "A statement of this number was posted already.",
                ));
            }
        }
        if statements.is_empty() && problems.is_empty() {
            problems.push(problem(2, "row", "no_rows", "The file has no line items."));
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.row);
            problems.truncate(MAX_PROBLEMS);
            return Err(BillingError::Rows(problems));
        }
        match self.ports().billing.create_statements(&statements).await {
            Ok(()) => {}
            // A number taken meanwhile: nothing was stored.
            Err(crate::repo::RepoError::Conflict(_)) => {
                return Err(BillingError::Rows(vec![problem(
                    1,
                    "statement_number",
                    "statement_exists",
                    "A statement of one of these numbers was posted meanwhile; nothing was stored.",
                )]));
            }
            Err(e) => return Err(e.into()),
        }
        let mut told = std::collections::BTreeSet::new();
        for s in &statements {
            if told.insert(s.patient) {
                self.audit(
                    actor,
                    s.patient,
                    BillingStep::PostedStatement,
                    Outcome::Allowed,
                    request_id,
                )
                .await?;
            }
        }
        Ok(ImportReport {
            statements: statements.len(),
            lines: statements.iter().map(|s| s.items.len()).sum(),
        })
    }
}
