//! Small value types shared by several contexts. Each parses once and is valid from then on;
//! the ones that may carry health or identity data redact themselves in `Debug`.

use serde::{Deserialize, Serialize};

/// Why a text value was refused. Never echoes the input: it may be PHI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("value is empty")]
    Empty,
    #[error("value is longer than {max} characters")]
    TooLong { max: usize },
    #[error("value contains characters that are not allowed")]
    BadCharacters,
}

fn bounded(s: &str, max: usize) -> Result<String, TextError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::BadCharacters);
    }
    Ok(trimmed.to_owned())
}

/// [`bounded`] for a string already owned: kept as it is when it needs no trimming.
fn bounded_owned(s: String, max: usize) -> Result<String, TextError> {
    if s.trim().len() == s.len() {
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if s.chars().count() > max {
            return Err(TextError::TooLong { max });
        }
        if s.chars().any(char::is_control) {
            return Err(TextError::BadCharacters);
        }
        Ok(s)
    } else {
        bounded(&s, max)
    }
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, max = $max:expr, redact = $redact:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;
            /// Trims, then refuses empty, over-long or control-character values.
            pub fn parse(s: &str) -> Result<Self, TextError> {
                bounded(s, $max).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(s: String) -> Result<Self, TextError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if $redact {
                    f.write_str(concat!(stringify!($name), "(<redacted>)"))
                } else {
                    f.debug_tuple(stringify!($name)).field(&self.0).finish()
                }
            }
        }
    };
}

bounded_text!(
    /// The display name of an organisation.
    OrgName, max = 200, redact = false
);
bounded_text!(
    /// A medical record number: identifies a patient, so it is redacted in `Debug`.
    Mrn, max = 64, redact = true
);
bounded_text!(
    /// A phone number as the patient gave it.
    Phone, max = 40, redact = true
);
bounded_text!(
    /// A postal address on one line.
    Address, max = 500, redact = true
);
bounded_text!(
    /// The name of a clinician or an organisation as it appears on a record.
    DisplayName, max = 300, redact = false
);
bounded_text!(
    /// Words a patient adds to a grant: the relationship ("my daughter"), a note, a share
    /// link's recipient ("Dr Osei, Riverside"). About people, so redacted in `Debug`.
    GrantText, max = 200, redact = true
);
bounded_text!(
    /// The name of a care pool ("Primary care", "Billing").
    PoolName, max = 80, redact = false
);
bounded_text!(
    /// A pharmacy's name as the patient gave it.
    PharmacyName, max = 120, redact = false
);
bounded_text!(
    /// A message thread's subject: written by a patient, may say anything about their health.
    Subject, max = 200, redact = true
);

/// The text of a message: plain text of at most [`MessageText::MAX_CHARS`] characters, line
/// breaks kept (as `\n`), no other control characters. May say anything about a person's
/// health, so redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 10_000;

    /// Trims the ends, keeps line breaks and tabs, refuses empty, over-long or other
    /// control characters.
    pub fn parse(s: &str) -> Result<Self, TextError> {
        let text = s.replace("\r\n", "\n").replace('\r', "\n");
        let text = text.trim();
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(TextError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(TextError::BadCharacters);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MessageText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageText(<redacted>)")
    }
}

bounded_text!(
    /// Where a record came from in the source system ("Observation/abc", a full URL, ...).
    /// The key that makes imports idempotent.
    SourceIdentifier, max = 300, redact = false
);

/// A URL-safe short name for an organisation: `a-z`, `0-9` and `-`, 2 to 64 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if s.len() > 64 {
            return Err(TextError::TooLong { max: 64 });
        }
        let ok = s.len() >= 2
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TextError::BadCharacters)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, TextError> {
        Self::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(v: Slug) -> String {
        v.0
    }
}

impl std::fmt::Debug for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Slug").field(&self.0).finish()
    }
}

/// Why a string is not an email address. Never echoes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address has no '@' or no domain")]
    Malformed,
    #[error("email address is longer than 254 characters")]
    TooLong,
}

impl EmailError {
    /// What every form and the API say for an address that is not one.
    pub const SENTENCE: &'static str = "Enter a valid email address.";
}

/// An email address (lower-cased domain). Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, EmailError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains(char::is_whitespace);
        if local.is_empty() || local.contains(char::is_whitespace) || !domain_ok {
            return Err(EmailError::Malformed);
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, EmailError> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(v: Email) -> String {
        v.0
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// A coded concept: a code from a code system, with the text people read.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Code {
    system: Option<String>,
    code: Option<String>,
    display: String,
}

impl Code {
    /// `display` is required (what a patient reads); system and code are optional because
    /// outside data sometimes carries only text.
    pub fn new(system: Option<&str>, code: Option<&str>, display: &str) -> Result<Self, TextError> {
        let display = bounded(display, 1000)?;
        let opt = |v: Option<&str>| -> Result<Option<String>, TextError> {
            v.map(|v| bounded(v, 300)).transpose()
        };
        Ok(Self {
            system: opt(system)?,
            code: opt(code)?,
            display,
        })
    }
    /// [`Code::new`] for parts already owned (a stored row): the same checks, no copies of
    /// parts that need no trimming.
    pub fn from_parts(
        system: Option<String>,
        code: Option<String>,
        display: String,
    ) -> Result<Self, TextError> {
        Ok(Self {
            system: system.map(|v| bounded_owned(v, 300)).transpose()?,
            code: code.map(|v| bounded_owned(v, 300)).transpose()?,
            display: bounded_owned(display, 1000)?,
        })
    }

    pub fn system(&self) -> Option<&str> {
        self.system.as_deref()
    }
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Codes of a patient's record are health data: show only the code system.
        f.debug_struct("Code")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_accepts_kebab_case_only() {
        assert!(Slug::parse("demo-clinic").is_ok());
        assert_eq!(Slug::parse("Demo").unwrap_err(), TextError::BadCharacters);
        assert_eq!(Slug::parse("-x").unwrap_err(), TextError::BadCharacters);
        assert_eq!(Slug::parse("").unwrap_err(), TextError::Empty);
    }

    #[test]
    fn email_normalises_domain_and_redacts() {
        let e = Email::parse(" Ann@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "Ann@example.org");
        assert_eq!(format!("{e:?}"), "Email(<redacted>)");
        assert_eq!(Email::parse("ann@localhost"), Err(EmailError::Malformed));
        assert_eq!(Email::parse("ann example.org"), Err(EmailError::Malformed));
    }

    #[test]
    fn a_code_from_owned_parts_is_checked_like_a_new_one() {
        let owned = |s: &str| s.to_owned();
        let c =
            Code::from_parts(Some(owned("http://loinc.org")), None, owned(" Glucose ")).unwrap();
        assert_eq!(
            c,
            Code::new(Some("http://loinc.org"), None, "Glucose").unwrap()
        );
        assert_eq!(
            Code::from_parts(None, None, owned("  ")).unwrap_err(),
            TextError::Empty
        );
        assert_eq!(
            Code::from_parts(None, Some("9".repeat(301)), owned("x")).unwrap_err(),
            TextError::TooLong { max: 300 }
        );
        assert_eq!(
            Code::from_parts(None, None, owned("a\u{7}b")).unwrap_err(),
            TextError::BadCharacters
        );
    }

    #[test]
    fn bounded_text_trims_and_limits() {
        assert_eq!(Mrn::parse("  12345 ").unwrap().as_str(), "12345");
        assert_eq!(Mrn::parse("   ").unwrap_err(), TextError::Empty);
        assert_eq!(
            Mrn::parse(&"9".repeat(65)).unwrap_err(),
            TextError::TooLong { max: 64 }
        );
        assert_eq!(Mrn::parse("a\u{0}b").unwrap_err(), TextError::BadCharacters);
        assert_eq!(
            format!("{:?}", Mrn::parse("12345").unwrap()),
            "Mrn(<redacted>)"
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        let bad: Result<Slug, _> = serde_json::from_str("\"NOT A SLUG\"");
        assert!(bad.is_err());
    }
}
