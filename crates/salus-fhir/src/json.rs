//! Reading FHIR JSON elements with typed errors.

use crate::import::Problem;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use salus_domain::record::Period;
use salus_domain::text::Code;
use serde_json::Value;

pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

pub(crate) fn first<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).and_then(Value::as_array).and_then(|a| a.first())
}

pub(crate) fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// A FHIR `dateTime`, `instant` or `date` (year, year-month or full date) as UTC.
/// Partial dates take their first instant; dates without a zone are read as UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    let date = match s.len() {
        4 => NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1),
        7 => NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok(),
        10 => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
        _ => None,
    }?;
    Some(date.and_time(NaiveTime::MIN).and_utc())
}

/// An optional dateTime element; present but unreadable is an error.
pub(crate) fn datetime(v: &Value, key: &'static str) -> Result<Option<DateTime<Utc>>, Problem> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_datetime(s).map(Some).ok_or(Problem::Invalid(key)),
        Some(_) => Err(Problem::Invalid(key)),
    }
}

/// A `Period` element; absent is an empty period.
pub(crate) fn period(v: &Value, key: &'static str) -> Result<Period, Problem> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Period::default()),
        Some(p @ Value::Object(_)) => Ok(Period {
            start: datetime(p, "start")?,
            end: datetime(p, "end")?,
        }),
        Some(_) => Err(Problem::Invalid(key)),
    }
}

/// A `CodeableConcept` value as a [`Code`]: the first coding, the text people read from
/// `text`, else the coding's display, else the code itself.
pub(crate) fn concept(cc: &Value, key: &'static str) -> Result<Code, Problem> {
    if !cc.is_object() {
        return Err(Problem::Invalid(key));
    }
    let coding = first(cc, "coding");
    let system = coding.and_then(|c| str_at(c, "system"));
    let code = coding.and_then(|c| str_at(c, "code"));
    let display = str_at(cc, "text")
        .or_else(|| coding.and_then(|c| str_at(c, "display")))
        .or(code)
        .ok_or(Problem::Invalid(key))?;
    Code::new(system, code, display).map_err(|_| Problem::Invalid(key))
}

/// The `CodeableConcept` element `key` of `v`, if present.
pub(crate) fn codeable(v: &Value, key: &'static str) -> Result<Option<Code>, Problem> {
    v.get(key).map(|cc| concept(cc, key)).transpose()
}

/// The first `CodeableConcept` of the list element `key` of `v`, if any.
pub(crate) fn first_codeable(v: &Value, key: &'static str) -> Result<Option<Code>, Problem> {
    first(v, key).map(|cc| concept(cc, key)).transpose()
}

pub(crate) fn required_codeable(v: &Value, key: &'static str) -> Result<Code, Problem> {
    codeable(v, key)?.ok_or(Problem::Missing(key))
}

/// The code of the first coding of a `CodeableConcept`.
pub(crate) fn coding_code<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(|cc| first(cc, "coding"))
        .and_then(|c| str_at(c, "code"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_of_every_precision() {
        let t = parse_datetime("2011-09-09T16:04:31+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2011-09-09T14:04:31+00:00");
        assert_eq!(
            parse_datetime("2011-09-09").unwrap().to_rfc3339(),
            "2011-09-09T00:00:00+00:00"
        );
        assert_eq!(
            parse_datetime("2011-09").unwrap().to_rfc3339(),
            "2011-09-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_datetime("2011").unwrap().to_rfc3339(),
            "2011-01-01T00:00:00+00:00"
        );
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_datetime("2011-13-01").is_none());
    }

    #[test]
    fn codeable_prefers_text() {
        let v: Value = serde_json::json!({"code": {"coding": [{"system": "s", "code": "c", "display": "d"}], "text": "t"}});
        let c = codeable(&v, "code").unwrap().unwrap();
        assert_eq!(
            (c.system(), c.code(), c.display()),
            (Some("s"), Some("c"), "t")
        );
        let bare: Value = serde_json::json!({"code": {"coding": [{"code": "c"}]}});
        assert_eq!(codeable(&bare, "code").unwrap().unwrap().display(), "c");
        let empty: Value = serde_json::json!({"code": {}});
        assert_eq!(codeable(&empty, "code"), Err(Problem::Invalid("code")));
    }
}
