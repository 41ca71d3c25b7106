//! The words a patient reads for the codes of records: statuses, flags, kinds of visit and
//! result, note types. One place, used by the pages and the printouts, so no page shows
//! `entered_in_error` or `vital_signs`, and a code means the same everywhere.

use crate::record::{
    AbnormalFlag, AllergyCategory, AllergyStatus, Criticality, EncounterClass, EncounterStatus,
    ImmunizationStatus, MedicationStatus, NoteType, ObservationCategory, ProblemStatus,
    ProcedureStatus, ReactionSeverity, RecordBody, RecordKind, ResultStatus,
};

const IN_ERROR: &str = "Recorded in error";

impl RecordKind {
    /// "1 test result", "3 visits": a count of records of this kind in words.
    pub fn counted(self, n: u64) -> String {
        let (one, many) = match self {
            Self::Encounter => ("visit", "visits"),
            Self::Observation => ("test result", "test results"),
            Self::DiagnosticReport => ("report", "reports"),
            Self::Medication => ("medication", "medications"),
            Self::Immunization => ("immunization", "immunizations"),
            Self::Problem => ("health problem", "health problems"),
            Self::Allergy => ("allergy", "allergies"),
            Self::Procedure => ("procedure", "procedures"),
            Self::ClinicalNote => ("note", "notes"),
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }
}
const NOT_KNOWN: &str = "Not known";

impl EncounterStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Planned => "Planned",
            Self::InProgress => "In progress",
            Self::Finished => "Completed",
            Self::Cancelled => "Cancelled",
            Self::EnteredInError => IN_ERROR,
            Self::Unknown => NOT_KNOWN,
        }
    }
}

impl ResultStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Registered => "Ordered",
            Self::Partial => "Some results in",
            Self::Preliminary => "Preliminary",
            Self::Final => "Final",
            Self::Amended => "Updated",
            Self::Corrected => "Corrected",
            Self::Appended => "Added to",
            Self::Cancelled => "Cancelled",
            Self::EnteredInError => IN_ERROR,
            Self::Unknown => NOT_KNOWN,
        }
    }
}

impl MedicationStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Active => "Taking",
            Self::OnHold => "Paused",
            Self::Stopped => "Stopped",
            Self::Completed => "Finished",
            Self::Draft => "Not yet prescribed",
            Self::EnteredInError => IN_ERROR,
            Self::Unknown => NOT_KNOWN,
        }
    }
}

impl ImmunizationStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Completed => "Given",
            Self::NotDone => "Not given",
            Self::EnteredInError => IN_ERROR,
        }
    }
}

impl ProblemStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Active => "Current",
            Self::Recurrence | Self::Relapse => "Back again",
            Self::Inactive => "Not current",
            Self::Remission => "In remission",
            Self::Resolved => "Resolved",
        }
    }
}

impl AllergyStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Active => "Current",
            Self::Inactive => "Not current",
            Self::Resolved => "Resolved",
        }
    }
}

impl ProcedureStatus {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Preparation => "Planned",
            Self::InProgress => "In progress",
            Self::NotDone => "Not done",
            Self::OnHold => "Paused",
            Self::Stopped => "Stopped",
            Self::Completed => "Done",
            Self::EnteredInError => IN_ERROR,
            Self::Unknown => NOT_KNOWN,
        }
    }
}

impl AbnormalFlag {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Low => "Low",
            Self::High => "High",
            Self::CriticalLow => "Very low",
            Self::CriticalHigh => "Very high",
            Self::Abnormal => "Outside the normal range",
        }
    }
}

impl EncounterClass {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Ambulatory => "Clinic visit",
            Self::Emergency => "Emergency",
            Self::Inpatient => "Hospital stay",
            Self::Virtual => "Video or phone",
            Self::HomeHealth => "Home visit",
            Self::Other => "Other",
        }
    }
}

impl ObservationCategory {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Laboratory => "Lab test",
            Self::VitalSigns => "Vital sign",
            Self::Other => "Other",
        }
    }
}

impl NoteType {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::DischargeSummary => "Discharge summary",
            Self::VisitNote => "Visit note",
            Self::ProgressNote => "Progress note",
            Self::Consultation => "Consultation",
            Self::HistoryAndPhysical => "History and examination",
            Self::Other => "Note",
        }
    }
}

impl AllergyCategory {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Food => "Food",
            Self::Medication => "Medicine",
            Self::Environment => "Environment",
            Self::Biologic => "Biological product",
        }
    }
}

impl Criticality {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Low => "Low risk",
            Self::High => "High risk",
            Self::UnableToAssess => "Risk not known",
        }
    }
}

impl ReactionSeverity {
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Mild => "Mild",
            Self::Moderate => "Moderate",
            Self::Severe => "Severe",
        }
    }
}

/// The words for a status code of records of `kind` (what filters offer); `None` for a code
/// the kind does not have.
pub fn status_phrase(kind: RecordKind, code: &str) -> Option<&'static str> {
    match kind {
        RecordKind::Encounter => EncounterStatus::from_code(code).map(EncounterStatus::phrase),
        RecordKind::Observation | RecordKind::DiagnosticReport => {
            ResultStatus::from_code(code).map(ResultStatus::phrase)
        }
        RecordKind::Medication => MedicationStatus::from_code(code).map(MedicationStatus::phrase),
        RecordKind::Immunization => {
            ImmunizationStatus::from_code(code).map(ImmunizationStatus::phrase)
        }
        RecordKind::Problem => ProblemStatus::from_code(code).map(ProblemStatus::phrase),
        RecordKind::Allergy => match code {
            "unknown" => Some(NOT_KNOWN),
            _ => AllergyStatus::from_code(code).map(AllergyStatus::phrase),
        },
        RecordKind::Procedure => ProcedureStatus::from_code(code).map(ProcedureStatus::phrase),
        RecordKind::ClinicalNote => (code == "current").then_some("Current"),
    }
}

impl RecordBody {
    /// The record's status in words.
    pub fn status_phrase(&self) -> &'static str {
        status_phrase(self.kind(), self.status()).unwrap_or(NOT_KNOWN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(phrase: &str) -> bool {
        !phrase.is_empty()
            && !phrase.contains('_')
            && phrase.chars().next().is_some_and(char::is_uppercase)
    }

    #[test]
    fn every_status_of_every_kind_has_words() {
        for kind in RecordKind::ALL {
            for code in kind.status_codes() {
                let phrase = status_phrase(*kind, code)
                    .unwrap_or_else(|| panic!("{kind:?} {code} has no words"));
                assert!(readable(phrase), "{kind:?} {code}: {phrase}");
            }
        }
        assert_eq!(
            status_phrase(RecordKind::Encounter, "finished"),
            Some("Completed")
        );
        assert_eq!(status_phrase(RecordKind::Medication, "nonsense"), None);
    }

    #[test]
    fn every_flag_class_category_and_note_type_has_words() {
        let all = AbnormalFlag::ALL
            .iter()
            .map(|f| f.phrase())
            .chain(EncounterClass::ALL.iter().map(|c| c.phrase()))
            .chain(ObservationCategory::ALL.iter().map(|c| c.phrase()))
            .chain(NoteType::ALL.iter().map(|t| t.phrase()))
            .chain(AllergyCategory::ALL.iter().map(|c| c.phrase()))
            .chain(Criticality::ALL.iter().map(|c| c.phrase()))
            .chain(ReactionSeverity::ALL.iter().map(|s| s.phrase()));
        for phrase in all {
            assert!(readable(phrase), "{phrase}");
        }
    }

    #[test]
    fn every_kind_counts_in_words() {
        for kind in RecordKind::ALL {
            let one = kind.counted(1);
            let many = kind.counted(3);
            assert!(one.starts_with("1 ") && !one.contains('_'), "{one}");
            assert!(
                many.starts_with("3 ") && many != one.replace('1', "3"),
                "{many}"
            );
        }
        assert_eq!(RecordKind::Allergy.counted(2), "2 allergies");
    }
}
