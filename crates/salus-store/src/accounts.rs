//! Account, token, session and audit ports on sea-orm.

use crate::entity::{account, email_token, login_failure, session};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::account::{
    Account, AccountRepository, AccountState, ChartLink, EmailToken, PasswordHash, Role, Session,
    SessionRepository, StaffRole, TokenDigest, TokenPurpose, TokenRepository,
};
use salus_domain::patient::PersonName;
use salus_domain::text::Email;
use salus_domain::{AccountId, OrganizationId, PatientId, RepoError, SessionId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef,
};

fn email_key(email: &Email) -> String {
    email.as_str().to_lowercase()
}

/// The throttling key of an address: hex SHA-256 of its normalised form, so a stranger's
/// address is never stored.
fn failure_subject(email: &Email) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(email_key(email).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn account_from_row(a: account::Model) -> Result<Account, RepoError> {
    let role = match (a.role.as_str(), a.staff_organization_id) {
        ("patient", _) => Role::Patient,
        (code, Some(org)) => Role::Staff {
            role: StaffRole::from_code(code).ok_or(RepoError::Corrupt("accounts.role"))?,
            organization: OrganizationId::from_uuid(org),
        },
        _ => return Err(RepoError::Corrupt("accounts.role")),
    };
    let state = match (a.state.as_str(), a.state_at) {
        ("pending", _) => AccountState::PendingVerification,
        ("active", Some(at)) => AccountState::Active { verified_at: at },
        ("disabled", Some(at)) => AccountState::Disabled { at },
        _ => return Err(RepoError::Corrupt("accounts.state")),
    };
    Ok(Account {
        id: AccountId::from_uuid(a.id),
        email: Email::parse(&a.email).map_err(|_| RepoError::Corrupt("accounts.email"))?,
        name: PersonName::new(&a.given_name, &a.family_name)
            .map_err(|_| RepoError::Corrupt("accounts.name"))?,
        birth_date: a.birth_date,
        role,
        state,
        chart: a
            .patient_id
            .map_or(ChartLink::Unlinked, |p| ChartLink::Linked {
                patient: PatientId::from_uuid(p),
            }),
        password: PasswordHash::new(a.password_hash),
        created_at: a.created_at,
    })
}

fn account_to_row(a: &Account) -> account::ActiveModel {
    let (role, org) = match a.role {
        Role::Patient => ("patient", None),
        Role::Staff { role, organization } => (role.code(), Some(organization.as_uuid())),
    };
    let (state, state_at) = match a.state {
        AccountState::PendingVerification => ("pending", None),
        AccountState::Active { verified_at } => ("active", Some(verified_at)),
        AccountState::Disabled { at } => ("disabled", Some(at)),
    };
    account::ActiveModel {
        id: Set(a.id.as_uuid()),
        email_key: Set(email_key(&a.email)),
        email: Set(a.email.as_str().to_owned()),
        given_name: Set(a.name.given().to_owned()),
        family_name: Set(a.name.family().to_owned()),
        birth_date: Set(a.birth_date),
        role: Set(role.to_owned()),
        staff_organization_id: Set(org),
        state: Set(state.to_owned()),
        state_at: Set(state_at),
        patient_id: Set(match a.chart {
            ChartLink::Unlinked => None,
            ChartLink::Linked { patient } => Some(patient.as_uuid()),
        }),
        password_hash: Set(a.password.as_str().to_owned()),
        created_at: Set(a.created_at),
    }
}

#[async_trait::async_trait]
impl AccountRepository for Store {
    async fn create(&self, a: &Account) -> Result<(), RepoError> {
        account::Entity::insert(account_to_row(a))
            .exec_without_returning(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(())
    }

    async fn find(&self, id: AccountId) -> Result<Option<Account>, RepoError> {
        account::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(account_from_row)
            .transpose()
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, RepoError> {
        account::Entity::find()
            .filter(account::Column::EmailKey.eq(email_key(email)))
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(account_from_row)
            .transpose()
    }

    async fn activate(&self, id: AccountId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let done = account::Entity::update_many()
            .col_expr(account::Column::State, Expr::value("active"))
            .col_expr(account::Column::StateAt, Expr::value(at))
            .filter(account::Column::Id.eq(id.as_uuid()))
            .filter(account::Column::State.eq("pending"))
            .exec(&self.db)
            .await;
        self.sessions.changed();
        done.map_err(repo_err)?;
        Ok(())
    }

    async fn set_password(&self, id: AccountId, hash: &PasswordHash) -> Result<(), RepoError> {
        let done = account::Entity::update_many()
            .col_expr(account::Column::PasswordHash, Expr::value(hash.as_str()))
            .filter(account::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await;
        self.sessions.changed();
        done.map_err(repo_err)?;
        Ok(())
    }

    async fn set_email(&self, id: AccountId, email: &Email) -> Result<(), RepoError> {
        let done = account::Entity::update_many()
            .col_expr(account::Column::Email, Expr::value(email.as_str()))
            .col_expr(account::Column::EmailKey, Expr::value(email_key(email)))
            .filter(account::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await;
        self.sessions.changed();
        done.map_err(repo_err)?;
        Ok(())
    }

    async fn failures_since(
        &self,
        who: &Email,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, RepoError> {
        login_failure::Entity::find()
            .select_only()
            .column(login_failure::Column::At)
            .filter(login_failure::Column::Subject.eq(failure_subject(who)))
            .filter(login_failure::Column::At.gte(since))
            .order_by_asc(login_failure::Column::At)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)
    }

    async fn add_failure(&self, who: &Email, at: DateTime<Utc>) -> Result<(), RepoError> {
        // Failures older than the throttle's hour no longer count: forget them (an index
        // range), so a spray of unknown addresses leaves no lasting rows.
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::At.lt(at - chrono::Duration::hours(1)))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        login_failure::Entity::insert(login_failure::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            subject: Set(failure_subject(who)),
            at: Set(at),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn clear_failures(&self, who: &Email) -> Result<(), RepoError> {
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::Subject.eq(failure_subject(who)))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(())
    }

    async fn linked_to(&self, patient: PatientId) -> Result<Vec<Account>, RepoError> {
        account::Entity::find()
            .filter(account::Column::PatientId.eq(patient.as_uuid()))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(account_from_row)
            .collect()
    }

    async fn staff_of(&self, organization: OrganizationId) -> Result<Vec<Account>, RepoError> {
        account::Entity::find()
            .filter(account::Column::StaffOrganizationId.eq(organization.as_uuid()))
            .order_by_asc(account::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(account_from_row)
            .collect()
    }
}

#[async_trait::async_trait]
impl TokenRepository for Store {
    async fn store(&self, t: &EmailToken) -> Result<(), RepoError> {
        email_token::Entity::insert(email_token::ActiveModel {
            digest: Set(t.digest.0.to_vec()),
            account_id: Set(t.account.as_uuid()),
            purpose: Set(t.purpose.code().to_owned()),
            issued_at: Set(t.issued_at),
            expires_at: Set(t.expires_at),
            used_at: Set(None),
            new_email: Set(t.new_email.as_ref().map(|e| e.as_str().to_owned())),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn consume_email_change(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<(AccountId, Email)>, RepoError> {
        let Some(account) = self.consume(digest, TokenPurpose::ChangeEmail, now).await? else {
            return Ok(None);
        };
        let row = email_token::Entity::find_by_id(digest.0.to_vec())
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        let email = row
            .and_then(|r| r.new_email)
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|_| RepoError::Corrupt("stored new email address"))?;
        Ok(email.map(|e| (account, e)))
    }

    async fn consume(
        &self,
        digest: &TokenDigest,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>, RepoError> {
        // One conditional UPDATE: the database lets exactly one caller flip `used_at`.
        let flipped = email_token::Entity::update_many()
            .col_expr(email_token::Column::UsedAt, Expr::value(now))
            .filter(email_token::Column::Digest.eq(digest.0.to_vec()))
            .filter(email_token::Column::Purpose.eq(purpose.code()))
            .filter(email_token::Column::UsedAt.is_null())
            .filter(email_token::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        if flipped.rows_affected != 1 {
            return Ok(None);
        }
        let row = email_token::Entity::find_by_id(digest.0.to_vec())
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(row.map(|r| AccountId::from_uuid(r.account_id)))
    }

    async fn peek(
        &self,
        digest: &TokenDigest,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>, RepoError> {
        let row = email_token::Entity::find()
            .filter(email_token::Column::Digest.eq(digest.0.to_vec()))
            .filter(email_token::Column::Purpose.eq(purpose.code()))
            .filter(email_token::Column::UsedAt.is_null())
            .filter(email_token::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(row.map(|r| AccountId::from_uuid(r.account_id)))
    }

    async fn latest_issued(
        &self,
        account: AccountId,
        purpose: TokenPurpose,
    ) -> Result<Option<DateTime<Utc>>, RepoError> {
        email_token::Entity::find()
            .select_only()
            .column(email_token::Column::IssuedAt)
            .filter(email_token::Column::AccountId.eq(account.as_uuid()))
            .filter(email_token::Column::Purpose.eq(purpose.code()))
            .order_by_desc(email_token::Column::IssuedAt)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(repo_err)
    }
}

fn session_from_row(r: session::Model) -> Result<Session, RepoError> {
    Ok(Session {
        id: SessionId::from_uuid(r.id),
        account: AccountId::from_uuid(r.account_id),
        digest: digest_from(&r.digest)?,
        created_at: r.created_at,
        last_seen_at: r.last_seen_at,
        revoked_at: r.revoked_at,
        authenticated_at: r.authenticated_at.unwrap_or(r.created_at),
        previous_sign_in_at: r.previous_sign_in_at,
        device: r.device,
    })
}

fn digest_from(bytes: &[u8]) -> Result<TokenDigest, RepoError> {
    <[u8; 32]>::try_from(bytes)
        .map(TokenDigest)
        .map_err(|_| RepoError::Corrupt("sessions.digest"))
}

#[async_trait::async_trait]
impl SessionRepository for Store {
    async fn create(&self, s: &Session) -> Result<(), RepoError> {
        session::Entity::insert(session::ActiveModel {
            id: Set(s.id.as_uuid()),
            account_id: Set(s.account.as_uuid()),
            digest: Set(s.digest.0.to_vec()),
            created_at: Set(s.created_at),
            last_seen_at: Set(s.last_seen_at),
            revoked_at: Set(s.revoked_at),
            authenticated_at: Set(Some(s.authenticated_at)),
            previous_sign_in_at: Set(s.previous_sign_in_at),
            // The column holds at most 80 characters; the words are far shorter.
            device: Set(s.device.as_ref().map(|d| d.chars().take(80).collect())),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn find_by_digest(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<(Session, Account)>, RepoError> {
        let generation = match self.sessions.get(digest) {
            Ok(found) => return Ok(Some(found)),
            Err(generation) => generation,
        };
        let of_account: RelationDef = session::Entity::belongs_to(account::Entity)
            .from(session::Column::AccountId)
            .to(account::Column::Id)
            .into();
        let row = session::Entity::find()
            .filter(session::Column::Digest.eq(digest.0.to_vec()))
            .join(JoinType::InnerJoin, of_account)
            .select_also(account::Entity)
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        match row {
            Some((s, Some(a))) => {
                let found = (session_from_row(s)?, account_from_row(a)?);
                self.sessions.store(digest, generation, &found);
                Ok(Some(found))
            }
            Some((_, None)) | None => Ok(None),
        }
    }

    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let done = session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, Expr::value(at))
            .filter(session::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await;
        self.sessions.changed();
        done.map_err(repo_err)?;
        Ok(())
    }

    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let done = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(session::Column::Id.eq(id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await;
        self.sessions.changed();
        done.map_err(repo_err)?;
        Ok(())
    }

    async fn reauthenticated(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let done = session::Entity::update_many()
            .col_expr(session::Column::AuthenticatedAt, Expr::value(at))
            .filter(session::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await;
        self.sessions.changed();
        done.map_err(repo_err)?;
        Ok(())
    }

    async fn revoke_all(
        &self,
        account: AccountId,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let mut q = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(session::Column::AccountId.eq(account.as_uuid()))
            .filter(session::Column::RevokedAt.is_null());
        if let Some(keep) = keep {
            q = q.filter(session::Column::Id.ne(keep.as_uuid()));
        }
        let done = q.exec(&self.db).await;
        self.sessions.changed();
        Ok(done.map_err(repo_err)?.rows_affected)
    }

    async fn last_sign_in(&self, account: AccountId) -> Result<Option<DateTime<Utc>>, RepoError> {
        session::Entity::find()
            .select_only()
            .column(session::Column::CreatedAt)
            .filter(session::Column::AccountId.eq(account.as_uuid()))
            .order_by_desc(session::Column::CreatedAt)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(repo_err)
    }

    async fn live_for_account(&self, account: AccountId) -> Result<Vec<Session>, RepoError> {
        session::Entity::find()
            .filter(session::Column::AccountId.eq(account.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .order_by_desc(session::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(session_from_row)
            .collect()
    }
}
