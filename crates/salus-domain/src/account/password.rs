//! The password rules of NIST SP 800-63B / OWASP ASVS V2.1: 12 to 128 characters counted in
//! Unicode code points, any characters, no truncation, no composition rules; refuse common
//! passwords and ones built from the person's own name, email or birth date.

use super::ports::{CommonPasswords, StrengthEstimate};
use chrono::NaiveDate;

/// A secret typed by a person or handed to them (password, token, code). Redacted in `Debug`
/// and `Display` is not implemented, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the hasher or the digest only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// Why a new password was refused; the message tells the person what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("use at least {min} characters")]
    TooShort { min: usize },
    #[error("use at most {max} characters")]
    TooLong { max: usize },
    #[error("this password is on a list of commonly used passwords; choose another")]
    Common,
    #[error("do not use your name in your password")]
    ContainsName,
    #[error("do not use your email address in your password")]
    ContainsEmail,
    #[error("do not use your date of birth in your password")]
    ContainsBirthDate,
}

impl PasswordRejection {
    /// The sentence every form and the API show for it.
    pub fn sentence(self) -> String {
        format!("Choose another password: {self}.")
    }

    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::Common => "password_common",
            Self::ContainsName => "password_contains_name",
            Self::ContainsEmail => "password_contains_email",
            Self::ContainsBirthDate => "password_contains_birth_date",
        }
    }
}

/// What the password must not be built from.
#[derive(Debug, Clone, Copy)]
pub struct PersonalInfo<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub email: &'a str,
    pub birth_date: Option<NaiveDate>,
}

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;

/// Checks a new password against the rules above.
///
/// # Errors
/// The first rule it breaks.
pub fn check_new_password(
    candidate: &SecretText,
    me: &PersonalInfo<'_>,
    common: &dyn CommonPasswords,
) -> Result<(), PasswordRejection> {
    let pw = candidate.expose();
    let chars = pw.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordRejection::TooShort { min: MIN_CHARS });
    }
    if chars > MAX_CHARS {
        return Err(PasswordRejection::TooLong { max: MAX_CHARS });
    }
    let lower = pw.to_lowercase();
    let has = |part: &str| {
        let part = part.trim().to_lowercase();
        part.chars().count() >= 3 && lower.contains(&part)
    };
    let name_parts = me
        .given_name
        .split_whitespace()
        .chain(me.family_name.split_whitespace());
    if name_parts.into_iter().any(has) {
        return Err(PasswordRejection::ContainsName);
    }
    let local = me.email.split('@').next().unwrap_or_default();
    if has(me.email) || has(local) {
        return Err(PasswordRejection::ContainsEmail);
    }
    if let Some(dob) = me.birth_date {
        let forms = [
            "%Y%m%d", "%Y-%m-%d", "%d%m%Y", "%m%d%Y", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d%m%y",
            "%m%d%y",
        ];
        if forms
            .iter()
            .any(|f| lower.contains(&dob.format(f).to_string()))
        {
            return Err(PasswordRejection::ContainsBirthDate);
        }
    }
    if common.is_common(candidate) {
        return Err(PasswordRejection::Common);
    }
    Ok(())
}

/// What the person sees while typing a new password: whether it would be accepted (and if
/// not, why), and how hard it would be to guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordFeedback {
    pub verdict: Result<(), PasswordRejection>,
    pub estimate: StrengthEstimate,
}

impl PasswordFeedback {
    /// Plain words for the score.
    pub fn label(&self) -> &'static str {
        match self.estimate.score {
            0 => "very weak",
            1 => "weak",
            2 => "fair",
            3 => "good",
            _ => "strong",
        }
    }
}

/// Checks a password being typed: the same rules as [`check_new_password`], plus an
/// estimate. A password the rules refuse scores 0 whatever its estimate.
pub fn password_feedback(
    candidate: &SecretText,
    me: &PersonalInfo<'_>,
    common: &dyn CommonPasswords,
) -> PasswordFeedback {
    let verdict = check_new_password(candidate, me, common);
    if matches!(verdict, Err(PasswordRejection::TooLong { .. })) {
        return PasswordFeedback {
            verdict,
            estimate: StrengthEstimate::default(),
        };
    }
    let mut personal: Vec<String> = me
        .given_name
        .split_whitespace()
        .chain(me.family_name.split_whitespace())
        .chain([me.email, me.email.split('@').next().unwrap_or_default()])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(dob) = me.birth_date {
        personal.push(dob.format("%Y%m%d").to_string());
        personal.push(dob.format("%Y").to_string());
    }
    let mut estimate = common.estimate(candidate, &personal);
    if verdict.is_err() {
        estimate.score = 0;
    }
    PasswordFeedback { verdict, estimate }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::MockCommonPasswords;

    fn me() -> PersonalInfo<'static> {
        PersonalInfo {
            given_name: "Ann Marie",
            family_name: "Lee",
            email: "zorbit77@example.org",
            birth_date: NaiveDate::from_ymd_opt(1984, 3, 9),
        }
    }

    fn not_common() -> MockCommonPasswords {
        let mut c = MockCommonPasswords::new();
        c.expect_is_common().return_const(false);
        c
    }

    fn check(pw: &str) -> Result<(), PasswordRejection> {
        check_new_password(&SecretText::new(pw), &me(), &not_common())
    }

    #[test]
    fn length_is_counted_in_code_points_without_truncation() {
        assert_eq!(
            check("short pass"),
            Err(PasswordRejection::TooShort { min: 12 })
        );
        // 12 code points, 24+ bytes: long enough.
        assert_eq!(check("ääääääääääää"), Ok(()));
        assert_eq!(
            check("ääääääääääá"),
            Err(PasswordRejection::TooShort { min: 12 })
        );
        assert_eq!(check(&"x".repeat(128)), Ok(()));
        assert_eq!(
            check(&"x".repeat(129)),
            Err(PasswordRejection::TooLong { max: 128 })
        );
        // No composition rules: spaces and emoji are fine.
        assert_eq!(check("correct horse 🐴 battery"), Ok(()));
    }

    #[test]
    fn personal_information_is_refused() {
        assert_eq!(
            check("marie-forever-2024"),
            Err(PasswordRejection::ContainsName)
        );
        assert_eq!(
            check("xxLEExx-qwerty-9"),
            Err(PasswordRejection::ContainsName)
        );
        assert_eq!(
            check("my zorbit77 password"),
            Err(PasswordRejection::ContainsEmail)
        );
        assert_eq!(
            check("born 19840309 here"),
            Err(PasswordRejection::ContainsBirthDate)
        );
        assert_eq!(
            check("born 09/03/1984!!"),
            Err(PasswordRejection::ContainsBirthDate)
        );
        assert_eq!(
            check("born 03/09/1984!!"),
            Err(PasswordRejection::ContainsBirthDate)
        );
    }

    #[test]
    fn common_passwords_are_refused() {
        let mut common = MockCommonPasswords::new();
        common
            .expect_is_common()
            .returning(|p| p.expose() == "qwertyuiopasdf");
        let r = check_new_password(&SecretText::new("qwertyuiopasdf"), &me(), &common);
        assert_eq!(r, Err(PasswordRejection::Common));
        assert_eq!(
            check_new_password(&SecretText::new("tulip kettle orbit"), &me(), &common),
            Ok(())
        );
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(
            format!("{:?}", SecretText::new("hunter2hunter2")),
            "SecretText(<redacted>)"
        );
    }

    #[test]
    fn feedback_counts_personal_words_and_scores_refused_passwords_zero() {
        let mut common = not_common();
        common
            .expect_estimate()
            .withf(|_, personal| {
                [
                    "Ann",
                    "Marie",
                    "Lee",
                    "zorbit77@example.org",
                    "zorbit77",
                    "19840309",
                ]
                .iter()
                .all(|w| personal.iter().any(|p| p == w))
            })
            .returning(|_, _| StrengthEstimate {
                score: 3,
                warning: None,
                suggestions: vec![],
            });
        let fine = password_feedback(&SecretText::new("tulip kettle orbit"), &me(), &common);
        assert_eq!(fine.verdict, Ok(()));
        assert_eq!((fine.estimate.score, fine.label()), (3, "good"));

        let named = password_feedback(&SecretText::new("annmarie kettle orbit"), &me(), &common);
        assert_eq!(named.verdict, Err(PasswordRejection::ContainsName));
        assert_eq!((named.estimate.score, named.label()), (0, "very weak"));
    }

    #[test]
    fn feedback_on_an_overlong_password_skips_the_estimate() {
        // No `estimate` expectation: calling it would fail the test.
        let long = "x".repeat(MAX_CHARS + 1);
        let f = password_feedback(&SecretText::new(long), &me(), &not_common());
        assert_eq!(
            f.verdict,
            Err(PasswordRejection::TooLong { max: MAX_CHARS })
        );
        assert_eq!(f.estimate.score, 0);
    }
}
