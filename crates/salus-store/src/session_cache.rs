//! A short-lived memory of "this session token belongs to this session and account".
//!
//! Every authenticated request starts by resolving its session token; without this, that is a
//! database read on every page and API call. Entries live at most [`SessionCache::TTL`], and
//! every write this process makes to the session or account tables empties the cache, so a
//! sign-out, a password change or a disabled account takes effect here at once. Another
//! process sharing the database (several servers on one PostgreSQL) sees such a change after
//! at most the TTL.
//!
//! Only complete answers are remembered: an unknown token is always looked up again.

use salus_domain::account::{Account, Session, TokenDigest};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bound on remembered sessions; reaching it starts over rather than growing.
const CAPACITY: usize = 10_000;

struct Entry {
    stored: Instant,
    session: Session,
    account: Account,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every write; a lookup that started before a write does not store its answer.
    generation: u64,
    entries: HashMap<[u8; 32], Entry>,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct SessionCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCache")
    }
}

impl SessionCache {
    /// How long an answer may be reused.
    pub(crate) const TTL: Duration = Duration::from_secs(2);

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The remembered answer for `digest` if it is fresh, and the generation to pass to
    /// [`Self::store`] after a database read otherwise.
    pub(crate) fn get(&self, digest: &TokenDigest) -> Result<(Session, Account), u64> {
        self.get_at(digest, Instant::now())
    }

    fn get_at(&self, digest: &TokenDigest, now: Instant) -> Result<(Session, Account), u64> {
        let inner = self.lock();
        match inner.entries.get(&digest.0) {
            Some(e) if now.saturating_duration_since(e.stored) < Self::TTL => {
                Ok((e.session.clone(), e.account.clone()))
            }
            _ => Err(inner.generation),
        }
    }

    /// Remembers a database answer read at `generation`, unless a write happened since.
    pub(crate) fn store(&self, digest: &TokenDigest, generation: u64, found: &(Session, Account)) {
        self.store_at(digest, generation, found, Instant::now());
    }

    fn store_at(
        &self,
        digest: &TokenDigest,
        generation: u64,
        found: &(Session, Account),
        now: Instant,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner
                .entries
                .retain(|_, e| now.saturating_duration_since(e.stored) < Self::TTL);
            if inner.entries.len() >= CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(
            digest.0,
            Entry {
                stored: now,
                session: found.0.clone(),
                account: found.1.clone(),
            },
        );
    }

    /// Forgets everything; called after every write to sessions or accounts.
    pub(crate) fn changed(&self) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use salus_domain::account::{AccountState, ChartLink, PasswordHash, Role};
    use salus_domain::patient::PersonName;
    use salus_domain::text::Email;
    use salus_domain::{AccountId, SessionId};

    fn found() -> (Session, Account) {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let account = Account {
            id: AccountId::from_uuid(uuid::Uuid::from_u128(1)),
            email: Email::parse("ana@example.test").unwrap(),
            name: PersonName::new("Ana", "Silva").unwrap(),
            birth_date: None,
            role: Role::Patient,
            state: AccountState::Active { verified_at: at },
            chart: ChartLink::Unlinked,
            password: PasswordHash::new("x"),
            created_at: at,
        };
        let session = Session {
            id: SessionId::from_uuid(uuid::Uuid::from_u128(2)),
            account: account.id,
            digest: TokenDigest([7; 32]),
            created_at: at,
            last_seen_at: at,
            revoked_at: None,
            authenticated_at: at,
            previous_sign_in_at: None,
            device: None,
        };
        (session, account)
    }

    #[test]
    fn an_answer_is_reused_until_it_is_too_old() {
        let cache = SessionCache::default();
        let digest = TokenDigest([7; 32]);
        let t0 = Instant::now();
        let generation = cache.get_at(&digest, t0).unwrap_err();
        cache.store_at(&digest, generation, &found(), t0);
        let (session, _) = cache.get_at(&digest, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(session.id, found().0.id);
        assert!(cache.get_at(&digest, t0 + SessionCache::TTL).is_err());
        assert!(cache.get_at(&TokenDigest([8; 32]), t0).is_err());
    }

    #[test]
    fn a_write_forgets_everything_and_refuses_answers_read_before_it() {
        let cache = SessionCache::default();
        let digest = TokenDigest([7; 32]);
        let t0 = Instant::now();
        let before = cache.get_at(&digest, t0).unwrap_err();
        cache.store_at(&digest, before, &found(), t0);
        // A lookup starts, then a sign-out writes, then the lookup's (stale) answer arrives.
        cache.changed();
        assert!(cache.get_at(&digest, t0).is_err());
        cache.store_at(&digest, before, &found(), t0);
        assert!(
            cache.get_at(&digest, t0).is_err(),
            "a stale answer was kept"
        );
        let after = cache.get_at(&digest, t0).unwrap_err();
        cache.store_at(&digest, after, &found(), t0);
        assert!(cache.get_at(&digest, t0).is_ok());
    }
}
