//! Organisations (tenants): what they offer in the portal and when records go online.

use crate::ids::OrganizationId;
use crate::record::{RecordKind, ReleaseState, SensitivityLabel, SensitivityLabels};
use crate::repo::RepoError;
use crate::text::{OrgName, Phone, Slug};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A portal feature an organisation may switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalFeature {
    Records,
    Messaging,
    Scheduling,
    BillPay,
    ProxyAccess,
}

impl PortalFeature {
    pub const ALL: [PortalFeature; 5] = [
        Self::Records,
        Self::Messaging,
        Self::Scheduling,
        Self::BillPay,
        Self::ProxyAccess,
    ];

    /// The stable code used in storage and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Records => "records",
            Self::Messaging => "messaging",
            Self::Scheduling => "scheduling",
            Self::BillPay => "bill_pay",
            Self::ProxyAccess => "proxy_access",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Whether this version of Salus has the pages for it. The start page lists only what
    /// a patient can use today, whatever an organisation has switched on.
    pub fn is_available(self) -> bool {
        matches!(self, Self::Records)
    }

    /// Words a patient reads.
    pub fn label(self) -> &'static str {
        match self {
            Self::Records => "Medical records online",
            Self::Messaging => "Message your care team",
            Self::Scheduling => "Book appointments",
            Self::BillPay => "Pay bills",
            Self::ProxyAccess => "Family and caregiver access",
        }
    }
}

/// When a new record of some kind (or carrying some label) becomes visible to the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ReleaseRule {
    /// Online as soon as it is filed (the 21st Century Cures Act default).
    Immediate,
    /// Online after a delay, e.g. so a clinician can call about a result first.
    AfterHours { hours: u32 },
    /// Held until staff release it.
    HeldForManualRelease,
    /// Never shown online (e.g. psychotherapy notes).
    NeverOnline,
}

impl ReleaseRule {
    /// How restrictive the rule is; when several rules apply the strictest wins.
    fn strictness(self) -> (u8, u32) {
        match self {
            Self::Immediate => (0, 0),
            Self::AfterHours { hours } => (1, hours),
            Self::HeldForManualRelease => (2, 0),
            Self::NeverOnline => (3, 0),
        }
    }

    /// The release state of a record filed at `filed_at` under this rule.
    pub fn initial_state(self, filed_at: DateTime<Utc>) -> ReleaseState {
        match self {
            Self::Immediate => ReleaseState::Released { at: filed_at },
            Self::AfterHours { hours } => ReleaseState::Released {
                at: filed_at + Duration::hours(i64::from(hours)),
            },
            Self::HeldForManualRelease => ReleaseState::Held,
            Self::NeverOnline => ReleaseState::NeverOnline,
        }
    }
}

/// Release rules per record kind and per sensitivity label. Anything not listed is immediate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePolicy {
    by_kind: BTreeMap<RecordKind, ReleaseRule>,
    by_label: BTreeMap<SensitivityLabel, ReleaseRule>,
}

impl ReleasePolicy {
    pub fn with_kind(mut self, kind: RecordKind, rule: ReleaseRule) -> Self {
        self.by_kind.insert(kind, rule);
        self
    }
    pub fn with_label(mut self, label: SensitivityLabel, rule: ReleaseRule) -> Self {
        self.by_label.insert(label, rule);
        self
    }
    pub fn kind_rules(&self) -> impl Iterator<Item = (RecordKind, ReleaseRule)> + '_ {
        self.by_kind.iter().map(|(k, r)| (*k, *r))
    }
    pub fn label_rules(&self) -> impl Iterator<Item = (SensitivityLabel, ReleaseRule)> + '_ {
        self.by_label.iter().map(|(l, r)| (*l, *r))
    }

    /// The rule for a record of `kind` carrying `labels`: the strictest of the kind's rule
    /// and every label's rule.
    pub fn rule_for(&self, kind: RecordKind, labels: SensitivityLabels) -> ReleaseRule {
        let kind_rule = self
            .by_kind
            .get(&kind)
            .copied()
            .unwrap_or(ReleaseRule::Immediate);
        labels
            .iter()
            .filter_map(|l| self.by_label.get(&l).copied())
            .fold(kind_rule, |a, b| {
                if b.strictness() > a.strictness() {
                    b
                } else {
                    a
                }
            })
    }
}

/// An organisation offering a portal on this deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: OrgName,
    pub slug: Slug,
    pub features: BTreeSet<PortalFeature>,
    pub release_policy: ReleasePolicy,
    /// The number patients call (shown to a patient waiting for the clinic, for example).
    pub phone: Option<Phone>,
    /// The zone every date and time of this organisation is shown in.
    pub time_zone: Tz,
    /// What guardians of its patients aged 12 to 17 do not see.
    pub guardian_policy: GuardianPolicy,
}

/// The age from which a patient's records with some labels are hidden from their guardian.
pub const GUARDIAN_TEEN_AGE: u32 = 12;
/// The age at which a guardian's access ends by itself.
pub const ADULT_AGE: u32 = 18;

/// An organisation's rule for guardians of minors: records with these labels are hidden from
/// the guardian of a patient aged [`GUARDIAN_TEEN_AGE`] to 17 (young people may consent to
/// that care on their own, and its confidentiality is theirs). A guardian of a younger child
/// sees every label; at [`ADULT_AGE`] the guardianship ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardianPolicy {
    pub hidden_from_teens: SensitivityLabels,
}

impl Default for GuardianPolicy {
    /// Mental health, substance use, sexual and reproductive health, and HIV.
    fn default() -> Self {
        Self {
            hidden_from_teens: SensitivityLabels::empty()
                .with(SensitivityLabel::MentalHealth)
                .with(SensitivityLabel::SubstanceUse)
                .with(SensitivityLabel::SexualReproductive)
                .with(SensitivityLabel::Hiv),
        }
    }
}

impl GuardianPolicy {
    /// The labels a guardian may see of a patient born on `birth_date`, on `today`.
    pub fn labels_for(
        self,
        birth_date: chrono::NaiveDate,
        today: chrono::NaiveDate,
    ) -> SensitivityLabels {
        let all = SensitivityLabel::ALL
            .iter()
            .fold(SensitivityLabels::empty(), |acc, l| acc.with(*l));
        if today.years_since(birth_date).unwrap_or(0) < GUARDIAN_TEEN_AGE {
            return all;
        }
        all.iter()
            .filter(|l| !self.hidden_from_teens.contains(*l))
            .fold(SensitivityLabels::empty(), |acc, l| acc.with(l))
    }
}

/// The day a person born on `birth_date` comes of age (a 29 February birthday counts from
/// 28 February in other years). `None` only for dates at the end of the calendar.
pub fn coming_of_age(birth_date: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
    birth_date.checked_add_months(chrono::Months::new(ADULT_AGE * 12))
}

impl Organization {
    pub fn offers(&self, feature: PortalFeature) -> bool {
        self.features.contains(&feature)
    }
}

/// Storage of organisations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait OrganizationRepository: Send + Sync {
    /// Stores a new organisation with its features and release policy.
    ///
    /// # Errors
    /// `Conflict` when the slug is taken; `Unavailable` when the store fails.
    async fn create(&self, org: &Organization) -> Result<(), RepoError>;

    /// All organisations, ordered by name.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when a stored row does not parse.
    async fn list(&self) -> Result<Vec<Organization>, RepoError>;

    /// The organisation with this id, if any.
    ///
    /// # Errors
    /// As [`OrganizationRepository::list`].
    async fn find(&self, id: OrganizationId) -> Result<Option<Organization>, RepoError>;

    /// The organisation with this slug, if any.
    ///
    /// # Errors
    /// As [`OrganizationRepository::list`].
    async fn find_by_slug(&self, slug: &Slug) -> Result<Option<Organization>, RepoError>;

    /// Replaces the organisation's guardian policy; false when there is no such organisation.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_guardian_policy(
        &self,
        id: OrganizationId,
        policy: GuardianPolicy,
    ) -> Result<bool, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_guardian_of_a_teenager_does_not_see_what_the_policy_hides() {
        let policy = GuardianPolicy::default();
        let born = chrono::NaiveDate::from_ymd_opt(2011, 6, 15).unwrap();
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let at_11 = policy.labels_for(born, day(2023, 6, 14));
        assert!(
            at_11.contains(SensitivityLabel::MentalHealth),
            "a child's guardian sees all"
        );
        assert!(at_11.contains(SensitivityLabel::Genetic));
        let at_12 = policy.labels_for(born, day(2023, 6, 15));
        for hidden in [
            SensitivityLabel::MentalHealth,
            SensitivityLabel::SubstanceUse,
            SensitivityLabel::SexualReproductive,
            SensitivityLabel::Hiv,
        ] {
            assert!(!at_12.contains(hidden), "{hidden:?} is hidden from 12");
        }
        assert!(
            at_12.contains(SensitivityLabel::Genetic),
            "not in the default policy"
        );
        let none_hidden = GuardianPolicy {
            hidden_from_teens: SensitivityLabels::empty(),
        };
        assert!(
            none_hidden
                .labels_for(born, day(2026, 12, 4))
                .contains(SensitivityLabel::Hiv)
        );
    }

    #[test]
    fn one_comes_of_age_on_the_18th_birthday() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(coming_of_age(day(2008, 12, 5)), Some(day(2026, 12, 5)));
        assert_eq!(
            coming_of_age(day(2008, 2, 29)),
            Some(day(2026, 2, 28)),
            "a leap-day birthday counts from 28 February"
        );
    }

    #[test]
    fn strictest_rule_wins() {
        let policy = ReleasePolicy::default()
            .with_kind(
                RecordKind::Observation,
                ReleaseRule::AfterHours { hours: 72 },
            )
            .with_label(SensitivityLabel::Hiv, ReleaseRule::HeldForManualRelease)
            .with_label(
                SensitivityLabel::Genetic,
                ReleaseRule::AfterHours { hours: 24 },
            );
        let none = SensitivityLabels::empty();
        assert_eq!(
            policy.rule_for(RecordKind::Immunization, none),
            ReleaseRule::Immediate
        );
        assert_eq!(
            policy.rule_for(RecordKind::Observation, none),
            ReleaseRule::AfterHours { hours: 72 }
        );
        let hiv = SensitivityLabels::empty().with(SensitivityLabel::Hiv);
        assert_eq!(
            policy.rule_for(RecordKind::Observation, hiv),
            ReleaseRule::HeldForManualRelease
        );
        let genetic = SensitivityLabels::empty().with(SensitivityLabel::Genetic);
        assert_eq!(
            policy.rule_for(RecordKind::Observation, genetic),
            ReleaseRule::AfterHours { hours: 72 }
        );
    }

    #[test]
    fn initial_state_follows_rule() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap();
        assert_eq!(
            ReleaseRule::AfterHours { hours: 2 }.initial_state(t),
            ReleaseState::Released {
                at: t + Duration::hours(2)
            }
        );
        assert_eq!(
            ReleaseRule::NeverOnline.initial_state(t),
            ReleaseState::NeverOnline
        );
        let released = ReleaseRule::Immediate.initial_state(t);
        assert!(released.is_visible_at(t));
        assert!(
            !ReleaseRule::AfterHours { hours: 2 }
                .initial_state(t)
                .is_visible_at(t)
        );
    }
}

/// The public directory: which organisations run a portal here and what each offers.
/// Anyone may read it (it is what a patient sees before signing in); it holds no PHI.
#[derive(Clone)]
pub struct DirectoryService {
    organizations: std::sync::Arc<dyn OrganizationRepository>,
}

impl std::fmt::Debug for DirectoryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryService").finish_non_exhaustive()
    }
}

/// Why the directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl DirectoryService {
    pub fn new(organizations: std::sync::Arc<dyn OrganizationRepository>) -> Self {
        Self { organizations }
    }

    /// Every organisation, by name, with the features it offers.
    ///
    /// # Errors
    /// [`DirectoryError::Repo`] when storage fails.
    pub async fn list(&self) -> Result<Vec<Organization>, DirectoryError> {
        Ok(self.organizations.list().await?)
    }

    /// The organisation with this slug, if it runs a portal here.
    ///
    /// # Errors
    /// [`DirectoryError::Repo`] when storage fails.
    pub async fn find(&self, slug: &Slug) -> Result<Option<Organization>, DirectoryError> {
        Ok(self.organizations.find_by_slug(slug).await?)
    }
}
