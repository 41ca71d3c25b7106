//! sea-orm entities. Private to the crate: nothing outside sees a row type.

pub(crate) mod account;
pub(crate) mod activation_code;
pub(crate) mod audit_log;
pub(crate) mod care_pool;
pub(crate) mod care_pool_staff;
pub(crate) mod clinical_record;
pub(crate) mod email_token;
pub(crate) mod grant;
pub(crate) mod identity_request;
pub(crate) mod identity_review;
pub(crate) mod login_failure;
pub(crate) mod message;
pub(crate) mod message_key;
pub(crate) mod message_receipt;
pub(crate) mod message_thread;
pub(crate) mod organization;
pub(crate) mod organization_feature;
pub(crate) mod patient;
pub(crate) mod practitioner;
pub(crate) mod provider_organization;
pub(crate) mod recovery_code;
pub(crate) mod release_notice;
pub(crate) mod release_rule;
pub(crate) mod session;
pub(crate) mod totp_factor;
