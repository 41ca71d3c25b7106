//! Lists: one kind of record of a chart, a page at a time, filtered.

use super::*;

/// One page of one kind of record of a chart.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// The chart; `None` for the actor's own.
    pub patient: Option<PatientId>,
    pub kind: RecordKind,
    pub filter: ListFilter,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// Which records of one kind to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub text: Option<String>,
    pub statuses: Vec<&'static str>,
}

/// The longest search text a list accepts, in characters. Titles are far shorter; a longer
/// text can only be a mistake or an attempt to make the database work hard.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Why a list filter was refused. Never echoes the input: a search may name a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Enter dates as YYYY-MM-DD, between the years 1 and 9999.")]
    Date,
    #[error("The start date is after the end date.")]
    DateRange,
    #[error("The search text is too long (at most 200 characters).")]
    TextTooLong,
    #[error("Unknown status for this kind of record.")]
    Status,
}

impl FilterError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Date => "invalid_date",
            Self::DateRange => "invalid_date_range",
            Self::TextTooLong => "search_too_long",
            Self::Status => "invalid_status",
        }
    }
}

impl ListFilter {
    /// A filter from what a person typed: dates as `YYYY-MM-DD` in the years 1 to 9999
    /// (`until` includes that day; `until` 9999-12-31 means no end), text of at most
    /// [`MAX_SEARCH_CHARS`] characters, and comma-separated status codes of `kind`. Empty
    /// values are ignored.
    ///
    /// # Errors
    /// [`FilterError`] for a date or status that does not parse, a start after the end, or
    /// a search text that is too long.
    pub fn parse(
        kind: RecordKind,
        from: Option<&str>,
        until: Option<&str>,
        text: Option<String>,
        status: Option<&str>,
    ) -> Result<Self, FilterError> {
        use chrono::Datelike;
        let date = |v: Option<&str>| match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .map(Some)
                .ok_or(FilterError::Date),
        };
        let midnight = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        let from = date(from)?;
        let until = date(until)?;
        if let (Some(f), Some(u)) = (from, until)
            && f > u
        {
            return Err(FilterError::DateRange);
        }
        // `until` includes its day: the bound is the next midnight. After 9999-12-31 there is
        // no date to store or compare (timestamps are four-digit years), and no record.
        let until = until
            .and_then(|u| u.succ_opt())
            .filter(|u| u.year() <= 9999)
            .map(midnight);
        let from = from.map(midnight);
        let text = text.filter(|t| !t.trim().is_empty());
        if text
            .as_deref()
            .is_some_and(|t| t.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(FilterError::TextTooLong);
        }
        let known = kind.status_codes();
        let mut statuses = Vec::new();
        for s in status.unwrap_or_default().split(',').map(str::trim) {
            if s.is_empty() {
                continue;
            }
            statuses.push(*known.iter().find(|k| **k == s).ok_or(FilterError::Status)?);
        }
        Ok(Self {
            from,
            until,
            text,
            statuses,
        })
    }
}

impl RecordsService {
    /// One kind of record of a chart, newest first.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn list(
        &self,
        actor: &Actor,
        req: ListRequest,
        request_id: Option<&str>,
    ) -> Result<Page<Shown<ClinicalRecord>>, ReadError> {
        let ListRequest {
            patient,
            kind,
            filter,
            after,
            limit,
        } = req;
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: patient.or(actor.own_chart()),
            kind: Some(kind),
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, patient).await?;
        let now = self.now();
        let query = RecordQuery {
            released_by: Self::released_by(actor, now),
            from: filter.from,
            until: filter.until,
            text: filter.text,
            statuses: filter.statuses,
            ..RecordQuery::default()
        };
        let page = self
            .visible_page(actor, chart.id, kind, &query, after, limit)
            .await?;
        self.audit(&a, Outcome::Allowed).await?;
        Ok(page)
    }
}
