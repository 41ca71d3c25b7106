//! [`GrantRepository`] on sea-orm.

use crate::entity::grant::{self, Column};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::access::{Action, GrantScope};
use salus_domain::account::{PasswordHash, TokenDigest};
use salus_domain::consent::{
    Grant, GrantMaker, GrantRepository, GrantState, Grantee, PasscodeAttempts,
};
use salus_domain::record::{RecordKind, SensitivityLabels};
use salus_domain::text::{Email, GrantText};
use salus_domain::{AccountId, GrantId, PatientId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

fn codes<T: Copy>(items: impl Iterator<Item = T>, code: fn(T) -> &'static str) -> String {
    items.map(code).collect::<Vec<_>>().join(",")
}

fn parsed<T: Ord>(
    text: &str,
    parse: fn(&str) -> Option<T>,
    column: &'static str,
) -> Result<std::collections::BTreeSet<T>, RepoError> {
    text.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| parse(c).ok_or(RepoError::Corrupt(column)))
        .collect()
}

fn text(v: Option<String>, column: &'static str) -> Result<Option<GrantText>, RepoError> {
    v.map(|s| GrantText::parse(&s).map_err(|_| RepoError::Corrupt(column)))
        .transpose()
}

fn to_row(g: &Grant, token: Option<TokenDigest>) -> Result<grant::ActiveModel, RepoError> {
    let (kind, account, email, relationship, recipient, passcode) = match &g.grantee {
        Grantee::Proxy {
            account,
            email,
            relationship,
        } => (
            "proxy",
            account.map(|a| a.as_uuid()),
            Some(email.as_str().to_owned()),
            relationship.as_ref().map(|r| r.as_str().to_owned()),
            None,
            None,
        ),
        Grantee::Guardian {
            account,
            email,
            relationship,
        } => (
            "guardian",
            Some(account.as_uuid()),
            Some(email.as_str().to_owned()),
            relationship.as_ref().map(|r| r.as_str().to_owned()),
            None,
            None,
        ),
        Grantee::ShareLink {
            recipient,
            passcode,
            ..
        } => (
            "share_link",
            None,
            None,
            None,
            recipient.as_ref().map(|r| r.as_str().to_owned()),
            passcode.as_ref().map(|p| p.as_str().to_owned()),
        ),
    };
    let (mut invited, mut expires, mut accepted, mut revoked, mut revoked_by) =
        (None, None, None, None, None);
    let state = match g.state {
        GrantState::Pending {
            invited_at,
            expires: e,
        } => {
            invited = Some(invited_at);
            expires = Some(e);
            "pending"
        }
        GrantState::Active { accepted_at, .. } => {
            accepted = Some(accepted_at);
            "active"
        }
        GrantState::Revoked { at, by } => {
            revoked = Some(at);
            revoked_by = Some(by.as_uuid());
            "revoked"
        }
        // Never stored: expiry is read from the times.
        GrantState::Expired => return Err(RepoError::Conflict("an expired grant is not stored")),
    };
    let (made_by, staff) = match g.made_by {
        GrantMaker::Patient(a) => (a, false),
        GrantMaker::Staff(a) => (a, true),
    };
    Ok(grant::ActiveModel {
        id: Set(g.id.as_uuid()),
        patient_id: Set(g.patient.as_uuid()),
        grantee_kind: Set(kind.to_owned()),
        grantee_account_id: Set(account),
        invitee_email: Set(email),
        relationship: Set(relationship),
        recipient: Set(recipient),
        passcode_hash: Set(passcode),
        token_digest: Set(token.map(|t| t.0.to_vec())),
        kinds: Set(codes(g.scope.kinds.iter().copied(), RecordKind::code)),
        actions: Set(codes(g.scope.actions.iter().copied(), Action::code)),
        labels: Set(i16::from(g.scope.labels.bits())),
        valid_from: Set(g.scope.valid_from),
        valid_until: Set(g.scope.valid_until),
        state: Set(state.to_owned()),
        invited_at: Set(invited),
        expires_at: Set(expires),
        accepted_at: Set(accepted),
        revoked_at: Set(revoked),
        revoked_by: Set(revoked_by),
        note: Set(g.note.as_ref().map(|n| n.as_str().to_owned())),
        made_by: Set(made_by.as_uuid()),
        made_by_staff: Set(staff),
        made_at: Set(g.made_at),
        end_notified_at: Set(None),
        failed_passcodes: Set(0),
        last_failed_at: Set(None),
        locked_at: Set(None),
    })
}

fn from_row(r: grant::Model) -> Result<Grant, RepoError> {
    let grantee = match r.grantee_kind.as_str() {
        "proxy" => Grantee::Proxy {
            account: r.grantee_account_id.map(AccountId::from_uuid),
            email: Email::parse(r.invitee_email.as_deref().unwrap_or_default())
                .map_err(|_| RepoError::Corrupt("grants.invitee_email"))?,
            relationship: text(r.relationship, "grants.relationship")?,
        },
        "guardian" => Grantee::Guardian {
            account: AccountId::from_uuid(
                r.grantee_account_id
                    .ok_or(RepoError::Corrupt("grants.grantee_account_id"))?,
            ),
            email: Email::parse(r.invitee_email.as_deref().unwrap_or_default())
                .map_err(|_| RepoError::Corrupt("grants.invitee_email"))?,
            relationship: text(r.relationship, "grants.relationship")?,
        },
        "share_link" => Grantee::ShareLink {
            recipient: text(r.recipient, "grants.recipient")?,
            passcode: r.passcode_hash.map(PasswordHash::new),
            attempts: PasscodeAttempts {
                failed: u32::try_from(r.failed_passcodes)
                    .map_err(|_| RepoError::Corrupt("grants.failed_passcodes"))?,
                last_failed: r.last_failed_at,
                locked_at: r.locked_at,
            },
        },
        _ => return Err(RepoError::Corrupt("grants.grantee_kind")),
    };
    let missing = |c| RepoError::Corrupt(c);
    let state = match r.state.as_str() {
        "pending" => GrantState::Pending {
            invited_at: r.invited_at.ok_or(missing("grants.invited_at"))?,
            expires: r.expires_at.ok_or(missing("grants.expires_at"))?,
        },
        "active" => GrantState::Active {
            accepted_at: r.accepted_at.ok_or(missing("grants.accepted_at"))?,
            until: r.valid_until,
        },
        "revoked" => GrantState::Revoked {
            at: r.revoked_at.ok_or(missing("grants.revoked_at"))?,
            by: AccountId::from_uuid(r.revoked_by.ok_or(missing("grants.revoked_by"))?),
        },
        _ => return Err(RepoError::Corrupt("grants.state")),
    };
    let labels = u8::try_from(r.labels)
        .ok()
        .and_then(|b| SensitivityLabels::from_bits(b).ok())
        .ok_or(RepoError::Corrupt("grants.labels"))?;
    let maker = AccountId::from_uuid(r.made_by);
    Ok(Grant {
        id: GrantId::from_uuid(r.id),
        patient: PatientId::from_uuid(r.patient_id),
        grantee,
        scope: GrantScope {
            kinds: parsed(&r.kinds, RecordKind::from_code, "grants.kinds")?,
            actions: parsed(&r.actions, Action::from_code, "grants.actions")?,
            labels,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
        },
        state,
        note: text(r.note, "grants.note")?,
        made_by: if r.made_by_staff {
            GrantMaker::Staff(maker)
        } else {
            GrantMaker::Patient(maker)
        },
        made_at: r.made_at,
    })
}

fn all(rows: Vec<grant::Model>) -> Result<Vec<Grant>, RepoError> {
    rows.into_iter().map(from_row).collect()
}

#[async_trait::async_trait]
impl GrantRepository for Store {
    async fn create(&self, g: &Grant, token: Option<TokenDigest>) -> Result<(), RepoError> {
        grant::Entity::insert(to_row(g, token)?)
            .exec_without_returning(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(())
    }

    async fn find(&self, id: GrantId) -> Result<Option<Grant>, RepoError> {
        grant::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(from_row)
            .transpose()
    }

    async fn by_token(&self, digest: &TokenDigest) -> Result<Option<Grant>, RepoError> {
        grant::Entity::find()
            .filter(Column::TokenDigest.eq(digest.0.to_vec()))
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(from_row)
            .transpose()
    }

    async fn for_patient(&self, patient: PatientId) -> Result<Vec<Grant>, RepoError> {
        all(grant::Entity::find()
            .filter(Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(Column::MadeAt)
            .all(&self.db)
            .await
            .map_err(repo_err)?)
    }

    async fn for_grantee(&self, account: AccountId) -> Result<Vec<Grant>, RepoError> {
        all(grant::Entity::find()
            .filter(Column::GranteeAccountId.eq(account.as_uuid()))
            .order_by_desc(Column::MadeAt)
            .all(&self.db)
            .await
            .map_err(repo_err)?)
    }

    async fn accept(
        &self,
        id: GrantId,
        account: AccountId,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        // One conditional UPDATE: of two acceptances at once, exactly one finds it pending.
        let done = grant::Entity::update_many()
            .col_expr(Column::State, Expr::value("active"))
            .col_expr(Column::GranteeAccountId, Expr::value(account.as_uuid()))
            .col_expr(Column::AcceptedAt, Expr::value(at))
            .col_expr(Column::ValidUntil, Expr::value(until))
            .col_expr(Column::TokenDigest, Expr::value(Option::<Vec<u8>>::None))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::State.eq("pending"))
            .filter(Column::ExpiresAt.gt(at))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn set_scope(&self, id: GrantId, scope: &GrantScope) -> Result<bool, RepoError> {
        let done = grant::Entity::update_many()
            .col_expr(
                Column::Kinds,
                Expr::value(codes(scope.kinds.iter().copied(), RecordKind::code)),
            )
            .col_expr(
                Column::Actions,
                Expr::value(codes(scope.actions.iter().copied(), Action::code)),
            )
            .col_expr(Column::Labels, Expr::value(i16::from(scope.labels.bits())))
            .col_expr(Column::ValidFrom, Expr::value(scope.valid_from))
            .col_expr(Column::ValidUntil, Expr::value(scope.valid_until))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::State.ne("revoked"))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn revoke(
        &self,
        id: GrantId,
        by: AccountId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let done = grant::Entity::update_many()
            .col_expr(Column::State, Expr::value("revoked"))
            .col_expr(Column::RevokedAt, Expr::value(at))
            .col_expr(Column::RevokedBy, Expr::value(by.as_uuid()))
            .col_expr(Column::TokenDigest, Expr::value(Option::<Vec<u8>>::None))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::State.ne("revoked"))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn guardianships_ended(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Grant>, RepoError> {
        all(grant::Entity::find()
            .filter(Column::GranteeKind.eq("guardian"))
            .filter(Column::ValidUntil.lte(now))
            .filter(Column::State.eq("active"))
            .filter(Column::EndNotifiedAt.is_null())
            .order_by_asc(Column::ValidUntil)
            .limit(u64::from(limit.clamp(1, 1000)))
            .all(&self.db)
            .await
            .map_err(repo_err)?)
    }

    async fn mark_end_notified(&self, id: GrantId, at: DateTime<Utc>) -> Result<bool, RepoError> {
        // Conditional: of two nodes at once, exactly one tells the patient.
        let done = grant::Entity::update_many()
            .col_expr(Column::EndNotifiedAt, Expr::value(at))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::EndNotifiedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn passcode_failed(
        &self,
        id: GrantId,
        at: DateTime<Utc>,
        lock_after: u32,
    ) -> Result<PasscodeAttempts, RepoError> {
        // Counted in the database (`failed = failed + 1`), so attempts at once all count.
        grant::Entity::update_many()
            .col_expr(
                Column::FailedPasscodes,
                Expr::col(Column::FailedPasscodes).add(1),
            )
            .col_expr(Column::LastFailedAt, Expr::value(at))
            .filter(Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        grant::Entity::update_many()
            .col_expr(Column::LockedAt, Expr::value(at))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::FailedPasscodes.gte(i32::try_from(lock_after).unwrap_or(i32::MAX)))
            .filter(Column::LockedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        let row = grant::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .ok_or(RepoError::Corrupt("grants.id"))?;
        Ok(PasscodeAttempts {
            failed: u32::try_from(row.failed_passcodes)
                .map_err(|_| RepoError::Corrupt("grants.failed_passcodes"))?,
            last_failed: row.last_failed_at,
            locked_at: row.locked_at,
        })
    }
}
