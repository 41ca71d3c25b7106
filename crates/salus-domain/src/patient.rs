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
}
