//! The chart: who a patient is, as the organisation knows them.

use crate::ids::{OrganizationId, PatientId};
use crate::repo::RepoError;
use crate::text::{Address, Email, Mrn, Phone, SourceIdentifier, TextError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A person's name. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    given: String,
    family: String,
}

impl PersonName {
    /// Both parts trimmed, at most 200 characters each; at least one part must be present.
    pub fn new(given: &str, family: &str) -> Result<Self, TextError> {
        let (given, family) = (given.trim(), family.trim());
        if given.is_empty() && family.is_empty() {
            return Err(TextError::Empty);
        }
        if given.chars().count() > 200 || family.chars().count() > 200 {
            return Err(TextError::TooLong { max: 200 });
        }
        if given.chars().chain(family.chars()).any(char::is_control) {
            return Err(TextError::BadCharacters);
        }
        Ok(Self {
            given: given.to_owned(),
            family: family.to_owned(),
        })
    }
    pub fn given(&self) -> &str {
        &self.given
    }
    pub fn family(&self) -> &str {
        &self.family
    }
    /// "Given Family", as shown on pages.
    pub fn full(&self) -> String {
        match (self.given.is_empty(), self.family.is_empty()) {
            (false, false) => format!("{} {}", self.given, self.family),
            (true, _) => self.family.clone(),
            (_, true) => self.given.clone(),
        }
    }
}

/// A date of birth as a person types it on a form or sends it to the API: `YYYY-MM-DD`, from
/// 1900 on. (Whether it is after today is for the use case, which knows today.)
///
/// # Errors
/// [`InvalidBirthDate`] for anything else.
pub fn parse_birth_date(text: &str) -> Result<chrono::NaiveDate, InvalidBirthDate> {
    use chrono::Datelike as _;
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| d.year() >= 1900)
        .ok_or(InvalidBirthDate)
}

/// A date of birth that is not a `YYYY-MM-DD` date from 1900 on, or is after today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Enter the date of birth as YYYY-MM-DD.")]
pub struct InvalidBirthDate;

/// A staff search for a chart: part of the patient's name and their date of birth (both:
/// a name alone would list strangers, a date alone whole classes of patients). Redacted in
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ChartSearch {
    /// Lower-case letters and digits of the name as typed.
    name: String,
    pub birth_date: chrono::NaiveDate,
}

/// Why a chart search was refused as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChartSearchError {
    #[error("Enter at least two letters of the patient's name.")]
    Name,
    #[error("Enter the date of birth as YYYY-MM-DD.")]
    BirthDate,
}

impl ChartSearchError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Name => "invalid_name",
            Self::BirthDate => "invalid_birth_date",
        }
    }
}

/// Letters and digits only, lower case: "O'Brien-Smith" and "obrien smith" compare equal.
pub(crate) fn folded(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl ChartSearch {
    /// A search from the fields as typed (the page's form or the API's query).
    ///
    /// # Errors
    /// The first field that is not valid: name, then birth date.
    pub fn from_fields(name: &str, birth_date: &str) -> Result<Self, ChartSearchError> {
        let name = folded(name);
        if name.chars().count() < 2 {
            return Err(ChartSearchError::Name);
        }
        let birth_date = parse_birth_date(birth_date).map_err(|_| ChartSearchError::BirthDate)?;
        Ok(Self { name, birth_date })
    }

    /// Whether a chart is one the search asks for: born that day, with the searched text in
    /// its given or family name, or in both together.
    pub fn matches(&self, chart: &Patient) -> bool {
        chart.birth_date == self.birth_date
            && [
                folded(chart.name.given()),
                folded(chart.name.family()),
                folded(&chart.name.full()),
            ]
            .iter()
            .any(|n| n.contains(&self.name))
    }
}

impl std::fmt::Debug for ChartSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChartSearch(<redacted>)")
    }
}

impl std::fmt::Debug for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonName(<redacted>)")
    }
}

/// Administrative sex as FHIR defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdministrativeSex {
    Female,
    Male,
    Other,
    Unknown,
}

impl AdministrativeSex {
    pub fn code(self) -> &'static str {
        match self {
            Self::Female => "female",
            Self::Male => "male",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Female, Self::Male, Self::Other, Self::Unknown]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// How to reach the patient. Every part optional.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub address: Option<Address>,
}

impl std::fmt::Debug for ContactDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactDetails(<redacted>)")
    }
}

/// A patient chart in one organisation.
#[derive(Clone, PartialEq, Eq)]
pub struct Patient {
    pub id: PatientId,
    pub organization_id: OrganizationId,
    pub mrn: Mrn,
    pub name: PersonName,
    pub birth_date: NaiveDate,
    pub sex: AdministrativeSex,
    pub contact: ContactDetails,
    /// Where the chart came from, when it was imported.
    pub source_identifier: Option<SourceIdentifier>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the identifiers: everything else identifies a person.
        f.debug_struct("Patient")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .finish_non_exhaustive()
    }
}

/// Storage of charts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PatientRepository: Send + Sync {
    /// The chart with this id, if any.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when the stored row does not parse.
    async fn find(&self, id: PatientId) -> Result<Option<Patient>, RepoError>;

    /// The chart with this medical record number in the organisation, if any.
    ///
    /// # Errors
    /// As [`PatientRepository::find`].
    async fn find_by_mrn(
        &self,
        organization: OrganizationId,
        mrn: &Mrn,
    ) -> Result<Option<Patient>, RepoError>;

    /// The organisation's charts of people born on `birth_date`, at most `limit`.
    ///
    /// # Errors
    /// As [`PatientRepository::find`].
    async fn born_on(
        &self,
        organization: OrganizationId,
        birth_date: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<Patient>, RepoError>;

    /// How many charts the organisation holds.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn count(&self, organization: OrganizationId) -> Result<u64, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_needs_one_part_and_redacts() {
        assert_eq!(PersonName::new(" ", ""), Err(TextError::Empty));
        let n = PersonName::new("Ann", "Lee").unwrap();
        assert_eq!(n.full(), "Ann Lee");
        assert_eq!(PersonName::new("", "Lee").unwrap().full(), "Lee");
        assert!(!format!("{n:?}").contains("Ann"));
    }

    #[test]
    fn sex_codes_round_trip() {
        for s in ["female", "male", "other", "unknown"] {
            assert_eq!(
                AdministrativeSex::from_code(s).map(AdministrativeSex::code),
                Some(s)
            );
        }
        assert_eq!(AdministrativeSex::from_code("F"), None);
    }

    #[test]
    fn a_chart_search_needs_a_name_and_a_birth_date_and_ignores_case_and_marks() {
        let chart = Patient {
            id: PatientId::from_uuid(uuid::Uuid::from_u128(1)),
            organization_id: OrganizationId::from_uuid(uuid::Uuid::from_u128(2)),
            mrn: Mrn::parse("MRN-1").unwrap(),
            name: PersonName::new("Mary-Ann", "O'Brien Smith").unwrap(),
            birth_date: NaiveDate::from_ymd_opt(1961, 3, 9).unwrap(),
            sex: AdministrativeSex::Female,
            contact: ContactDetails::default(),
            source_identifier: None,
        };
        let hit = |name: &str| {
            ChartSearch::from_fields(name, "1961-03-09")
                .unwrap()
                .matches(&chart)
        };
        assert!(hit("obrien"));
        assert!(hit("O'BRIEN-SMITH"));
        assert!(hit("mary ann"));
        assert!(hit("Mary-Ann O'Brien"), "given and family together");
        assert!(!hit("Smyth"));
        let other_day = ChartSearch::from_fields("obrien", "1961-03-10").unwrap();
        assert!(
            !other_day.matches(&chart),
            "the birth date must be the same"
        );
        assert_eq!(
            ChartSearch::from_fields(" ' ", "1961-03-09"),
            Err(ChartSearchError::Name)
        );
        assert_eq!(
            ChartSearch::from_fields("O", "1961-03-09"),
            Err(ChartSearchError::Name)
        );
        assert_eq!(
            ChartSearch::from_fields("Obrien", "09/03/1961"),
            Err(ChartSearchError::BirthDate)
        );
        let typed = ChartSearch::from_fields("Obrien", "1961-03-09").unwrap();
        assert!(!format!("{typed:?}").contains("obrien"));
    }
}
