//! Share links: a patient lets someone without an account — a doctor elsewhere, a school nurse
//! — see chosen kinds of their record for a while, read-only, through a link that carries a
//! 256-bit token (stored only as its digest) and, if the patient wants, a passcode (stored as
//! an argon2id hash; wrong ones are throttled and lock the link after [`LOCK_AFTER`]).

use super::{
    ConsentError, ConsentService, Grant, GrantMaker, GrantState, Grantee, LOCK_AFTER,
    PasscodeAttempts, ScopeError,
};
use crate::access::{Action, Actor, GrantScope};
use crate::account::{AuthEventKind, HashError, SecretText};
use crate::audit::{AccessEvent, ActorRef, Outcome};
use crate::ids::GrantId;
use crate::record::{RecordKind, SensitivityLabels};
use crate::repo::RepoError;
use crate::text::GrantText;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

/// How long a share link works unless the patient chooses otherwise, and at most.
pub const DEFAULT_LINK_HOURS: i64 = 24;
pub const MAX_LINK_DAYS: i64 = 30;
/// A passcode's length, in characters.
pub const PASSCODE_CHARS: std::ops::RangeInclusive<usize> = 6..=64;

/// A patient's share link, as chosen.
#[derive(Clone)]
pub struct LinkRequest {
    pub kinds: BTreeSet<RecordKind>,
    /// How long it works, in hours (1 to 30 days).
    pub hours: i64,
    pub passcode: Option<SecretText>,
    pub recipient: Option<GrantText>,
}

impl std::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRequest")
            .field("kinds", &self.kinds)
            .field("hours", &self.hours)
            .finish_non_exhaustive()
    }
}

impl LinkRequest {
    /// A request from the fields as typed: kind codes, hours (empty: a day), an optional
    /// passcode and recipient.
    ///
    /// # Errors
    /// The first part that is not valid.
    pub fn from_fields<'a>(
        kinds: impl IntoIterator<Item = &'a str>,
        hours: Option<&str>,
        passcode: &str,
        recipient: &str,
    ) -> Result<Self, ScopeError> {
        let kinds = kinds
            .into_iter()
            .map(|k| RecordKind::from_code(k.trim()).ok_or(ScopeError::Kind))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if kinds.is_empty() {
            return Err(ScopeError::NoKinds);
        }
        let hours = match hours.map(str::trim).filter(|h| !h.is_empty()) {
            None => DEFAULT_LINK_HOURS,
            Some(h) => h.parse::<i64>().map_err(|_| ScopeError::Hours)?,
        };
        if !(1..=MAX_LINK_DAYS * 24).contains(&hours) {
            return Err(ScopeError::Hours);
        }
        let passcode = match passcode {
            "" => None,
            p if PASSCODE_CHARS.contains(&p.chars().count()) => Some(SecretText::new(p)),
            _ => return Err(ScopeError::Passcode),
        };
        Ok(Self {
            kinds,
            hours,
            passcode,
            recipient: super::service::optional_text(recipient)?,
        })
    }
}

/// A new share link: the grant, and the address to give (shown once; only its digest is kept).
#[derive(Debug)]
pub struct LinkCreated {
    pub grant: Grant,
    pub token: SecretText,
    pub url: String,
}

/// Why a share link does not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Unknown, expired or revoked: one answer.
    #[error("This link does not work any more. Ask the person who sent it for a new one.")]
    Invalid,
    #[error(
        "This link was locked after too many wrong passcodes. Ask the person who sent it for a new one."
    )]
    Locked,
    #[error("Enter the passcode you were given with this link.")]
    PasscodeNeeded,
    #[error("That passcode is not correct.")]
    WrongPasscode { left: u32 },
    /// Too many wrong passcodes: the next try is allowed in `seconds`.
    #[error("Too many wrong passcodes. Wait a moment before you try again.")]
    Wait { seconds: i64 },
    #[error("Too busy right now. Please try again in a few seconds.")]
    Busy { retry_after_secs: u32 },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why a share link could not be made.
pub type LinkError = ConsentError;

impl ConsentService {
    /// Patient: a read-only link to the chosen kinds of their record (released records
    /// without sensitivity labels only), with downloads of exactly that, for `req.hours`.
    ///
    /// # Errors
    /// [`ConsentError::Forbidden`] for anyone but a patient acting for themselves; `Busy`
    /// when the passcode cannot be hashed now.
    pub async fn create_share_link(
        &self,
        actor: &Actor,
        req: LinkRequest,
        request_id: Option<&str>,
    ) -> Result<LinkCreated, ConsentError> {
        let Actor::Patient { account, patient } = actor else {
            return Err(ConsentError::Forbidden);
        };
        let passcode = match req.passcode {
            None => None,
            Some(p) => Some(self.p.hasher.hash(p).await.map_err(|e| match e {
                HashError::Busy { retry_after_secs } => ConsentError::Busy { retry_after_secs },
                HashError::Failed => ConsentError::Repo(RepoError::Unavailable),
            })?),
        };
        let now = self.p.clock.now();
        let until = now + Duration::hours(req.hours);
        let grant = Grant {
            id: GrantId::generate(self.p.ids.as_ref()),
            patient: *patient,
            grantee: Grantee::ShareLink {
                recipient: req.recipient,
                passcode,
                attempts: PasscodeAttempts::default(),
            },
            scope: GrantScope {
                kinds: req.kinds,
                // Read-only: it views, and downloads what it views.
                actions: [Action::Read, Action::Export].into(),
                labels: SensitivityLabels::empty(),
                valid_from: now,
                valid_until: until,
            },
            state: GrantState::Active {
                accepted_at: now,
                until,
            },
            note: None,
            made_by: GrantMaker::Patient(*account),
            made_at: now,
        };
        let token = self.p.secrets.new_token();
        self.p
            .grants
            .create(&grant, Some(self.p.secrets.digest(&token)))
            .await?;
        self.audit(AuthEventKind::ShareLinkCreated, Some(*account), request_id)
            .await?;
        let url = format!("{}/share/{}", self.p.public_url, token.expose());
        Ok(LinkCreated { grant, token, url })
    }

    /// Whoever holds a share link: the actor it gives while it is in force (and, when it has
    /// a passcode, only with the right one), and the grant (for the page: its recipient, its
    /// end). A wrong passcode is counted, written to the patient's access history as refused,
    /// and after [`LOCK_AFTER`] locks the link; after [`FREE_ATTEMPTS`] each try waits.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub async fn open_share_link(
        &self,
        token: &SecretText,
        passcode: Option<SecretText>,
        request_id: Option<&str>,
    ) -> Result<(Actor, Grant), OpenError> {
        let now = self.p.clock.now();
        let grant = self
            .p
            .grants
            .by_token(&self.p.secrets.digest(token))
            .await?
            .filter(|g| matches!(g.state_at(now), GrantState::Active { .. }))
            .ok_or(OpenError::Invalid)?;
        let Grantee::ShareLink {
            passcode: hash,
            attempts,
            ..
        } = &grant.grantee
        else {
            return Err(OpenError::Invalid);
        };
        if attempts.locked_at.is_some() {
            return Err(OpenError::Locked);
        }
        if let Some(hash) = hash {
            let Some(typed) = passcode.filter(|p| !p.expose().is_empty()) else {
                return Err(OpenError::PasscodeNeeded);
            };
            if let Some(until) = attempts.next_try_at().filter(|t| *t > now) {
                return Err(OpenError::Wait {
                    seconds: (until - now).num_seconds().max(1),
                });
            }
            let verified = self
                .p
                .hasher
                .verify(typed, Some(hash.clone()))
                .await
                .map_err(|e| match e {
                    HashError::Busy { retry_after_secs } => OpenError::Busy { retry_after_secs },
                    HashError::Failed => OpenError::Repo(RepoError::Unavailable),
                })?;
            if !verified.matches {
                return Err(self.wrong_passcode(&grant, now, request_id).await?);
            }
        }
        let actor = grant.actor(None, now).ok_or(OpenError::Invalid)?;
        Ok((actor, grant))
    }

    /// Counts a wrong passcode: the patient's history shows the refused attempt; the answer
    /// says how many are left, or that the link is locked now.
    async fn wrong_passcode(
        &self,
        grant: &Grant,
        now: DateTime<Utc>,
        request_id: Option<&str>,
    ) -> Result<OpenError, RepoError> {
        let after = self
            .p
            .grants
            .passcode_failed(grant.id, now, LOCK_AFTER)
            .await?;
        self.p
            .log
            .record(AccessEvent {
                at: now,
                actor: ActorRef {
                    kind: "share_link",
                    account: None,
                    role: None,
                    grant: Some(grant.id),
                },
                patient: Some(grant.patient),
                action: Action::ViewChart,
                step: None,
                export: None,
                record_kind: None,
                record: None,
                outcome: Outcome::Denied,
                request_id: request_id.map(str::to_owned),
            })
            .await?;
        let locked = after.locked_at.is_some();
        self.audit(
            if locked {
                AuthEventKind::ShareLinkLocked
            } else {
                AuthEventKind::ShareLinkPasscodeFailed
            },
            None,
            request_id,
        )
        .await?;
        Ok(if locked {
            OpenError::Locked
        } else {
            OpenError::WrongPasscode {
                left: LOCK_AFTER.saturating_sub(after.failed),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::FREE_ATTEMPTS;

    #[test]
    fn a_link_request_is_read_from_the_fields() {
        let r = LinkRequest::from_fields(["observation"], None, "", " Dr Jones ").unwrap();
        assert_eq!(r.hours, DEFAULT_LINK_HOURS, "a day unless chosen");
        assert!(r.passcode.is_none());
        assert_eq!(r.recipient.unwrap().as_str(), "Dr Jones");
        let refused = |kinds: &[&str], hours: Option<&str>, passcode: &str| {
            LinkRequest::from_fields(kinds.iter().copied(), hours, passcode, "").unwrap_err()
        };
        assert_eq!(refused(&[], None, ""), ScopeError::NoKinds);
        assert_eq!(refused(&["observation"], Some("0"), ""), ScopeError::Hours);
        assert_eq!(
            refused(&["observation"], Some("721"), ""),
            ScopeError::Hours
        );
        assert_eq!(
            refused(&["observation"], Some("a day"), ""),
            ScopeError::Hours
        );
        assert_eq!(
            refused(&["observation"], None, "12345"),
            ScopeError::Passcode
        );
        assert!(LinkRequest::from_fields(["observation"], Some("720"), "123456", "").is_ok());
    }

    #[test]
    fn wrong_passcodes_wait_longer_and_longer_after_the_first_three() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let after = |failed| PasscodeAttempts {
            failed,
            last_failed: Some(at),
            locked_at: None,
        };
        assert_eq!(after(FREE_ATTEMPTS - 1).next_try_at(), None);
        assert_eq!(
            after(FREE_ATTEMPTS).next_try_at(),
            Some(at + Duration::seconds(30))
        );
        assert_eq!(
            after(FREE_ATTEMPTS + 1).next_try_at(),
            Some(at + Duration::seconds(60))
        );
        assert_eq!(
            after(9).next_try_at(),
            Some(at + Duration::seconds(30 * 64))
        );
    }
}
