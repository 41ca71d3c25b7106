//! [`OrganizationRepository`] on sea-orm.

use crate::convert::{SCOPE_KIND, SCOPE_LABEL, organization_from_rows, rule_to_row};
use crate::entity::{organization, organization_feature, release_rule};
use crate::{Store, repo_err};
use salus_domain::organization::{GuardianPolicy, Organization, OrganizationRepository};
use salus_domain::text::Slug;
use salus_domain::{OrganizationId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

async fn assemble(
    db: &impl ConnectionTrait,
    orgs: Vec<organization::Model>,
) -> Result<Vec<Organization>, RepoError> {
    if orgs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<_> = orgs.iter().map(|o| o.id).collect();
    let features = organization_feature::Entity::find()
        .filter(organization_feature::Column::OrganizationId.is_in(ids.clone()))
        .all(db)
        .await
        .map_err(repo_err)?;
    let rules = release_rule::Entity::find()
        .filter(release_rule::Column::OrganizationId.is_in(ids))
        .all(db)
        .await
        .map_err(repo_err)?;
    orgs.into_iter()
        .map(|o| organization_from_rows(o, &features, &rules))
        .collect()
}

#[async_trait::async_trait]
impl OrganizationRepository for Store {
    async fn create(&self, org: &Organization) -> Result<(), RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        organization::Entity::insert(organization::ActiveModel {
            id: Set(org.id.as_uuid()),
            slug: Set(org.slug.as_str().to_owned()),
            name: Set(org.name.as_str().to_owned()),
            created_at: Set(salus_domain::Clock::now(&salus_domain::SystemClock)),
            phone: Set(org.phone.as_ref().map(|p| p.as_str().to_owned())),
            time_zone: Set(org.time_zone.name().to_owned()),
            guardian_hidden_labels: Set(i16::from(org.guardian_policy.hidden_from_teens.bits())),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        if !org.features.is_empty() {
            organization_feature::Entity::insert_many(org.features.iter().map(|f| {
                organization_feature::ActiveModel {
                    organization_id: Set(org.id.as_uuid()),
                    feature: Set(f.code().to_owned()),
                }
            }))
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        }
        let kinds = org
            .release_policy
            .kind_rules()
            .map(|(k, r)| (SCOPE_KIND, k.code(), r));
        let labels = org
            .release_policy
            .label_rules()
            .map(|(l, r)| (SCOPE_LABEL, l.code(), r));
        let rules: Vec<_> = kinds
            .chain(labels)
            .map(|(scope, subject, rule)| {
                let (rule, hours) = rule_to_row(rule);
                release_rule::ActiveModel {
                    organization_id: Set(org.id.as_uuid()),
                    scope: Set(scope.to_owned()),
                    subject: Set(subject.to_owned()),
                    rule: Set(rule.to_owned()),
                    hours: Set(hours),
                }
            })
            .collect();
        if !rules.is_empty() {
            release_rule::Entity::insert_many(rules)
                .exec_without_returning(&txn)
                .await
                .map_err(repo_err)?;
        }
        txn.commit().await.map_err(repo_err)
    }

    async fn list(&self) -> Result<Vec<Organization>, RepoError> {
        let orgs = organization::Entity::find()
            .order_by_asc(organization::Column::Name)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        assemble(&self.db, orgs).await
    }

    async fn find(&self, id: OrganizationId) -> Result<Option<Organization>, RepoError> {
        let org = organization::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(assemble(&self.db, org.into_iter().collect()).await?.pop())
    }

    async fn find_by_slug(&self, slug: &Slug) -> Result<Option<Organization>, RepoError> {
        let org = organization::Entity::find()
            .filter(organization::Column::Slug.eq(slug.as_str()))
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(assemble(&self.db, org.into_iter().collect()).await?.pop())
    }

    async fn set_guardian_policy(
        &self,
        id: OrganizationId,
        policy: GuardianPolicy,
    ) -> Result<bool, RepoError> {
        let done = organization::Entity::update_many()
            .col_expr(
                organization::Column::GuardianHiddenLabels,
                Expr::value(i16::from(policy.hidden_from_teens.bits())),
            )
            .filter(organization::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }
}
