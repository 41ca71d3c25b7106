//! Closed sets of codes in answers (record kinds, statuses, flags, sensitivity labels, audit
//! outcomes), documented as `enum`s in the OpenAPI document. The lists come from the domain's
//! own code enums, so a new variant appears in the document without being written twice.

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use salus_domain::audit::Outcome;
use salus_domain::record::{AbnormalFlag, RecordKind, SensitivityLabel};
use std::borrow::Cow;
use std::marker::PhantomData;

/// A closed set of codes: its schema name, what it means, and every member.
pub trait CodeSet: Send + Sync + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    fn codes() -> Vec<&'static str>;
}

/// One code of the set `S`; serialised as the plain string.
pub struct Code<S>(&'static str, PhantomData<S>);

impl<S> Code<S> {
    pub fn new(code: &'static str) -> Self {
        Self(code, PhantomData)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl<S> std::fmt::Debug for Code<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl<S: CodeSet> Type for Code<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = &'static str;
    type RawElementValueType = &'static str;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed(S::NAME)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(S::NAME.to_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(S::NAME.to_owned(), |_| MetaSchema {
            description: Some(S::DESCRIPTION),
            enum_items: S::codes()
                .into_iter()
                .map(|c| serde_json::Value::String(c.to_owned()))
                .collect(),
            ..MetaSchema::new("string")
        });
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<S: CodeSet> ToJSON for Code<S> {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.to_owned()))
    }
}

impl<S: CodeSet> poem_openapi::types::ParseFromJSON for Code<S> {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        let given = value.as_ref().and_then(serde_json::Value::as_str);
        S::codes()
            .into_iter()
            .find(|c| Some(*c) == given)
            .map(Self::new)
            .ok_or_else(|| poem_openapi::types::ParseError::custom("not one of the codes"))
    }
}

impl<S> serde::Serialize for Code<S> {
    fn serialize<Se: serde::Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        s.serialize_str(self.0)
    }
}

#[derive(Debug)]
pub struct Kinds;
impl CodeSet for Kinds {
    const NAME: &'static str = "RecordKind";
    const DESCRIPTION: &'static str = "A kind of clinical record.";
    fn codes() -> Vec<&'static str> {
        RecordKind::ALL.iter().map(|k| k.code()).collect()
    }
}

#[derive(Debug)]
pub struct Statuses;
impl CodeSet for Statuses {
    const NAME: &'static str = "RecordStatus";
    const DESCRIPTION: &'static str =
        "A record's status; which ones a kind uses is listed with `GET /v1/records`.";
    fn codes() -> Vec<&'static str> {
        let mut all: Vec<&'static str> = RecordKind::ALL
            .iter()
            .flat_map(|k| k.status_codes())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[derive(Debug)]
pub struct Flags;
impl CodeSet for Flags {
    const NAME: &'static str = "ResultFlag";
    const DESCRIPTION: &'static str = "How a result compares with its normal range.";
    fn codes() -> Vec<&'static str> {
        AbnormalFlag::ALL.iter().map(|f| f.code()).collect()
    }
}

#[derive(Debug)]
pub struct Labels;
impl CodeSet for Labels {
    const NAME: &'static str = "SensitivityLabel";
    const DESCRIPTION: &'static str =
        "A category of especially sensitive information a record carries.";
    fn codes() -> Vec<&'static str> {
        SensitivityLabel::ALL.iter().map(|l| l.code()).collect()
    }
}

#[derive(Debug)]
pub struct Outcomes;
impl CodeSet for Outcomes {
    const NAME: &'static str = "AccessOutcome";
    const DESCRIPTION: &'static str = "How an access to the chart ended.";
    fn codes() -> Vec<&'static str> {
        [Outcome::Allowed, Outcome::Denied, Outcome::NotFound]
            .iter()
            .map(|o| o.code())
            .collect()
    }
}

/// A code set that is exactly one of the domain's code enums.
macro_rules! domain_code_set {
    ($($set:ident = $domain:ident, $name:literal, $description:literal;)+) => {$(
        #[derive(Debug)]
        pub struct $set;
        impl CodeSet for $set {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            fn codes() -> Vec<&'static str> {
                salus_domain::record::$domain::ALL.iter().map(|c| c.code()).collect()
            }
        }
    )+};
}

domain_code_set! {
    VisitClasses = EncounterClass, "VisitClass", "What sort of setting a visit took place in.";
    ResultCategories = ObservationCategory, "ResultCategory", "What sort of result: a lab test, a vital sign, or other.";
    AllergyCategories = AllergyCategory, "AllergyCategory", "What an allergy is to.";
    AllergyStatuses = AllergyStatus, "AllergyStatus", "Whether an allergy is current.";
    Criticalities = Criticality, "AllergyCriticality", "How dangerous a future reaction could be.";
    Severities = ReactionSeverity, "ReactionSeverity", "How severe a reaction was.";
    NoteTypes = NoteType, "NoteType", "What sort of clinical note.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_a_record_can_answer_is_in_its_set() {
        for kind in RecordKind::ALL {
            assert!(Kinds::codes().contains(&kind.code()));
            for status in kind.status_codes() {
                assert!(Statuses::codes().contains(&status), "{status}");
            }
        }
        assert_eq!(Outcomes::codes(), ["allowed", "denied", "not_found"]);
        assert!(Flags::codes().contains(&"critical_high"));
    }
}
