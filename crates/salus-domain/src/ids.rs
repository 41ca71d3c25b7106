//! Typed identifiers: one newtype per entity, a UUID (v7 when generated) inside.

use uuid::Uuid;

/// Where new identifiers come from (a port, so tests can make them predictable).
pub trait IdGenerator: Send + Sync + std::fmt::Debug {
    /// A fresh, unique UUID; adapters use time-ordered UUIDv7.
    fn next_uuid(&self) -> Uuid;
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new identifier from the generator.
            pub fn generate(ids: &dyn IdGenerator) -> Self {
                Self(ids.next_uuid())
            }
            /// Wraps a UUID read back from storage or a request.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// Parses the hyphenated textual form; the error never echoes the input.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

/// Why a string is not an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identifier")]
pub struct InvalidId;

id_type!(
    /// An organisation (tenant) running its portal on this deployment.
    OrganizationId
);
id_type!(
    /// A patient chart.
    PatientId
);
id_type!(
    /// Any clinical record (visit, result, medication, ...).
    RecordId
);
id_type!(
    /// A practitioner known from imported data.
    PractitionerId
);
id_type!(
    /// An organisation clinical data came from (a hospital, a lab), as opposed to the tenant.
    ProviderOrgId
);

id_type!(
    /// A sign-in account (patient or staff).
    AccountId
);
id_type!(
    /// A signed-in session.
    SessionId
);
id_type!(
    /// A patient's grant of access to someone else: a proxy or a share link.
    GrantId
);
id_type!(
    /// One entry of the audit log.
    AuditEventId
);
id_type!(
    /// One of an organisation's care pools (a team that answers messages).
    PoolId
);
id_type!(
    /// A conversation between a patient and a care pool.
    ThreadId
);
id_type!(
    /// One message of a thread.
    MessageId
);
id_type!(
    /// A file attached to a message.
    AttachmentId
);
id_type!(
    /// A pharmacy a patient saved for refills.
    PharmacyId
);
id_type!(
    /// A request to refill a medication.
    RefillId
);
id_type!(
    /// A booked visit.
    AppointmentId
);
id_type!(
    /// A place an organisation sees patients.
    LocationId
);
id_type!(
    /// A clinician patients can book (linked to the practitioner directory when known).
    ProviderId
);
id_type!(
    /// A kind of visit an organisation offers.
    VisitTypeId
);
id_type!(
    /// A weekly availability template.
    TemplateId
);
id_type!(
    /// One bookable time of one provider.
    SlotId
);
id_type!(
    /// A statement an organisation sent a patient.
    StatementId
);
id_type!(
    /// A payment of a patient's balance (or its attempt).
    PaymentId
);
id_type!(
    /// A refund of (part of) a payment.
    RefundId
);
id_type!(
    /// A staff adjustment of a patient's balance.
    AdjustmentId
);
id_type!(
    /// A patient's payment plan.
    PlanId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_garbage_without_echo() {
        let id = PatientId::from_uuid(Uuid::from_u128(42));
        assert_eq!(PatientId::parse(&id.to_string()), Ok(id));
        let err = PatientId::parse("Jane Doe 1970-01-01").unwrap_err();
        assert!(!err.to_string().contains("Jane"));
    }
}
