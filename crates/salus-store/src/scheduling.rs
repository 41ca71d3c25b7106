//! [`SchedulingRepository`] on sea-orm. A booking takes its slot with one conditional update
//! (`… WHERE state = 'open'`) in the transaction that writes the appointment: of any number of
//! concurrent bookings of a slot, on one process or several, the database lets one through.

use crate::entity::{
    appointment, availability_exception, availability_template, bookable_provider, location,
    scheduling_setting, slot, visit_type, waitlist,
};
use crate::{Store, repo_err};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use salus_domain::scheduling::{
    Appointment, AppointmentState, DayOff, Location, OnlineBooking, Provider, SchedulingRepository,
    Slot, SlotQuery, SlotState, SlotTime, Template, VisitMode, VisitType, WaitlistEntry,
    WeeklyTemplate,
};
use salus_domain::{
    AccountId, AppointmentId, LocationId, OrganizationId, PatientId, ProviderId, RepoError, SlotId,
    TemplateId, VisitTypeId,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

fn mode_code(m: VisitMode) -> &'static str {
    match m {
        VisitMode::InPerson => "in_person",
        VisitMode::Video => "video",
    }
}

fn online_code(o: OnlineBooking) -> &'static str {
    match o {
        OnlineBooking::Everyone => "everyone",
        OnlineBooking::ExistingPatients => "existing_patients",
        OnlineBooking::StaffOnly => "staff_only",
    }
}

fn slot_from(r: slot::Model) -> Result<Slot, RepoError> {
    let state = match (r.state.as_str(), r.appointment_id) {
        ("open", None) => SlotState::Open,
        ("blocked", None) => SlotState::Blocked,
        ("booked", Some(a)) => SlotState::Booked(AppointmentId::from_uuid(a)),
        _ => return Err(RepoError::Corrupt("slots.state")),
    };
    Ok(Slot {
        id: SlotId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        provider: ProviderId::from_uuid(r.provider_id),
        location: LocationId::from_uuid(r.location_id),
        visit_type: VisitTypeId::from_uuid(r.visit_type_id),
        time: SlotTime {
            start: r.start_at,
            end: r.end_at,
        },
        state,
    })
}

fn appointment_from(r: appointment::Model) -> Result<Appointment, RepoError> {
    let state = match (r.state.as_str(), r.cancelled_at, r.cancelled_by) {
        ("booked", _, _) => AppointmentState::Booked,
        ("cancelled", Some(at), Some(by)) => AppointmentState::Cancelled {
            at,
            by: AccountId::from_uuid(by),
            reason: r.cancel_reason.clone(),
        },
        _ => return Err(RepoError::Corrupt("appointments.state")),
    };
    Ok(Appointment {
        id: AppointmentId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        slot: SlotId::from_uuid(r.slot_id),
        provider: ProviderId::from_uuid(r.provider_id),
        location: LocationId::from_uuid(r.location_id),
        visit_type: VisitTypeId::from_uuid(r.visit_type_id),
        time: SlotTime {
            start: r.start_at,
            end: r.end_at,
        },
        reason: r.reason,
        booked_by: AccountId::from_uuid(r.booked_by),
        booked_at: r.booked_at,
        state,
    })
}

fn visit_type_from(r: visit_type::Model) -> Result<VisitType, RepoError> {
    let corrupt = || RepoError::Corrupt("visit_types");
    Ok(VisitType {
        id: VisitTypeId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        name: r.name,
        minutes: u16::try_from(r.minutes).map_err(|_| corrupt())?,
        mode: match r.mode.as_str() {
            "in_person" => VisitMode::InPerson,
            "video" => VisitMode::Video,
            _ => return Err(corrupt()),
        },
        online: match r.online.as_str() {
            "everyone" => OnlineBooking::Everyone,
            "existing_patients" => OnlineBooking::ExistingPatients,
            "staff_only" => OnlineBooking::StaffOnly,
            _ => return Err(corrupt()),
        },
        max_per_patient: u8::try_from(r.max_per_patient).map_err(|_| corrupt())?,
        bring: r.bring,
    })
}

fn location_from(r: location::Model) -> Result<Location, RepoError> {
    Ok(Location {
        id: LocationId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        time_zone: r
            .time_zone
            .parse()
            .map_err(|_| RepoError::Corrupt("locations.time_zone"))?,
        name: r.name,
        address: r.address,
    })
}

fn provider_from(r: bookable_provider::Model) -> Provider {
    Provider {
        id: ProviderId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        practitioner: r
            .practitioner_id
            .map(salus_domain::PractitionerId::from_uuid),
        name: r.name,
        active: r.active,
        video_url: r.video_url,
    }
}

fn waitlist_from(r: waitlist::Model) -> WaitlistEntry {
    WaitlistEntry {
        appointment: AppointmentId::from_uuid(r.appointment_id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        visit_type: VisitTypeId::from_uuid(r.visit_type_id),
        created_at: r.created_at,
        notified_at: r.notified_at,
    }
}

/// A patient's booked appointments not over at `now` (see `upcoming_of`).
fn upcoming_query(patient: PatientId, now: DateTime<Utc>) -> sea_orm::Select<appointment::Entity> {
    appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(patient.as_uuid()))
        .filter(appointment::Column::State.eq("booked"))
        .filter(appointment::Column::EndAt.gt(now))
        .order_by_asc(appointment::Column::StartAt)
}

/// Takes an open slot for `appointment` in `txn`: false when it is not open any more.
async fn take(
    txn: &DatabaseTransaction,
    slot: SlotId,
    appointment: AppointmentId,
) -> Result<bool, RepoError> {
    let taken = slot::Entity::update_many()
        .col_expr(slot::Column::State, Expr::value("booked"))
        .col_expr(
            slot::Column::AppointmentId,
            Expr::value(appointment.as_uuid()),
        )
        .filter(slot::Column::Id.eq(slot.as_uuid()))
        .filter(slot::Column::State.eq("open"))
        .exec(txn)
        .await
        .map_err(repo_err)?;
    Ok(taken.rows_affected == 1)
}

/// Opens the slot `appointment` held, in `txn`.
async fn free(
    txn: &DatabaseTransaction,
    slot: uuid::Uuid,
    appointment: AppointmentId,
) -> Result<(), RepoError> {
    slot::Entity::update_many()
        .col_expr(slot::Column::State, Expr::value("open"))
        .col_expr(
            slot::Column::AppointmentId,
            Expr::value(Option::<uuid::Uuid>::None),
        )
        .filter(slot::Column::Id.eq(slot))
        .filter(slot::Column::AppointmentId.eq(appointment.as_uuid()))
        .exec(txn)
        .await
        .map_err(repo_err)?;
    Ok(())
}

#[async_trait::async_trait]
impl SchedulingRepository for Store {
    async fn create_location(&self, l: &Location) -> Result<(), RepoError> {
        location::Entity::insert(location::ActiveModel {
            id: Set(l.id.as_uuid()),
            organization_id: Set(l.organization.as_uuid()),
            name: Set(l.name.clone()),
            address: Set(l.address.clone()),
            time_zone: Set(l.time_zone.name().to_owned()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn create_provider(&self, p: &Provider) -> Result<(), RepoError> {
        bookable_provider::Entity::insert(bookable_provider::ActiveModel {
            id: Set(p.id.as_uuid()),
            organization_id: Set(p.organization.as_uuid()),
            practitioner_id: Set(p.practitioner.map(|x| x.as_uuid())),
            name: Set(p.name.clone()),
            active: Set(p.active),
            video_url: Set(p.video_url.clone()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn create_visit_type(&self, v: &VisitType) -> Result<(), RepoError> {
        visit_type::Entity::insert(visit_type::ActiveModel {
            id: Set(v.id.as_uuid()),
            organization_id: Set(v.organization.as_uuid()),
            name: Set(v.name.clone()),
            minutes: Set(i16::try_from(v.minutes).map_err(|_| RepoError::Corrupt("minutes"))?),
            mode: Set(mode_code(v.mode).to_owned()),
            online: Set(online_code(v.online).to_owned()),
            max_per_patient: Set(i16::from(v.max_per_patient)),
            bring: Set(v.bring.clone()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn location(&self, id: LocationId) -> Result<Option<Location>, RepoError> {
        location::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(location_from)
            .transpose()
    }

    async fn create_template(&self, t: &Template) -> Result<(), RepoError> {
        let minute = |time: NaiveTime| {
            use chrono::Timelike;
            i16::try_from(time.hour() * 60 + time.minute()).unwrap_or(0)
        };
        availability_template::Entity::insert(availability_template::ActiveModel {
            id: Set(t.id.as_uuid()),
            provider_id: Set(t.provider.as_uuid()),
            location_id: Set(t.location.as_uuid()),
            visit_type_id: Set(t.visit_type.as_uuid()),
            weekday: Set(i16::try_from(t.weekly.weekday.num_days_from_monday()).unwrap_or(0)),
            start_minute: Set(minute(t.weekly.start)),
            end_minute: Set(minute(t.weekly.end)),
            valid_from: Set(t.weekly.valid_from),
            valid_until: Set(t.weekly.valid_until),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn templates_of(&self, organization: OrganizationId) -> Result<Vec<Template>, RepoError> {
        // A template's organisation is its visit type's.
        let kinds: Vec<(uuid::Uuid, i16)> = visit_type::Entity::find()
            .select_only()
            .column(visit_type::Column::Id)
            .column(visit_type::Column::Minutes)
            .filter(visit_type::Column::OrganizationId.eq(organization.as_uuid()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let minutes: std::collections::BTreeMap<uuid::Uuid, i16> = kinds.into_iter().collect();
        let rows = availability_template::Entity::find()
            .filter(
                availability_template::Column::VisitTypeId
                    .is_in(minutes.keys().copied().collect::<Vec<_>>()),
            )
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        let corrupt = || RepoError::Corrupt("availability_templates");
        let time = |m: i16| {
            let m = u32::try_from(m).map_err(|_| corrupt())?;
            NaiveTime::from_hms_opt(m / 60, m % 60, 0).ok_or_else(corrupt)
        };
        rows.into_iter()
            .map(|r| {
                let weekday = usize::try_from(r.weekday)
                    .ok()
                    .and_then(|d| {
                        [
                            Weekday::Mon,
                            Weekday::Tue,
                            Weekday::Wed,
                            Weekday::Thu,
                            Weekday::Fri,
                            Weekday::Sat,
                            Weekday::Sun,
                        ]
                        .get(d)
                        .copied()
                    })
                    .ok_or_else(corrupt)?;
                Ok(Template {
                    id: TemplateId::from_uuid(r.id),
                    organization,
                    provider: ProviderId::from_uuid(r.provider_id),
                    location: LocationId::from_uuid(r.location_id),
                    visit_type: VisitTypeId::from_uuid(r.visit_type_id),
                    weekly: WeeklyTemplate {
                        weekday,
                        start: time(r.start_minute)?,
                        end: time(r.end_minute)?,
                        minutes: minutes
                            .get(&r.visit_type_id)
                            .and_then(|m| u16::try_from(*m).ok())
                            .ok_or_else(corrupt)?,
                        valid_from: r.valid_from,
                        valid_until: r.valid_until,
                    },
                })
            })
            .collect()
    }

    async fn add_day_off(&self, d: &DayOff) -> Result<(), RepoError> {
        availability_exception::Entity::insert(availability_exception::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            provider_id: Set(d.provider.as_uuid()),
            day: Set(d.date),
            reason: Set(d.reason.clone()),
        })
        .on_conflict(
            OnConflict::columns([
                availability_exception::Column::ProviderId,
                availability_exception::Column::Day,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn days_off(
        &self,
        provider: ProviderId,
        from: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<DayOff>, RepoError> {
        Ok(availability_exception::Entity::find()
            .filter(availability_exception::Column::ProviderId.eq(provider.as_uuid()))
            .filter(availability_exception::Column::Day.between(from, until))
            .order_by_asc(availability_exception::Column::Day)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(|r| DayOff {
                provider,
                date: r.day,
                reason: r.reason,
            })
            .collect())
    }

    async fn visit_type(&self, id: VisitTypeId) -> Result<Option<VisitType>, RepoError> {
        visit_type::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(visit_type_from)
            .transpose()
    }

    async fn appointment(&self, id: AppointmentId) -> Result<Option<Appointment>, RepoError> {
        appointment::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(appointment_from)
            .transpose()
    }

    async fn add_slots(&self, slots: &[Slot]) -> Result<u64, RepoError> {
        if slots.is_empty() {
            return Ok(0);
        }
        let rows = slots.iter().map(|s| slot::ActiveModel {
            id: Set(s.id.as_uuid()),
            organization_id: Set(s.organization.as_uuid()),
            provider_id: Set(s.provider.as_uuid()),
            location_id: Set(s.location.as_uuid()),
            visit_type_id: Set(s.visit_type.as_uuid()),
            start_at: Set(s.time.start),
            end_at: Set(s.time.end),
            state: Set(match s.state {
                SlotState::Blocked => "blocked",
                _ => "open",
            }
            .to_owned()),
            appointment_id: Set(None),
        });
        slot::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([slot::Column::ProviderId, slot::Column::StartAt])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(repo_err)
    }

    async fn open_slots(
        &self,
        organization: OrganizationId,
        q: &SlotQuery,
    ) -> Result<Vec<Slot>, RepoError> {
        use slot::Column as C;
        let mut find = slot::Entity::find()
            .filter(C::OrganizationId.eq(organization.as_uuid()))
            .filter(C::VisitTypeId.eq(q.visit_type.as_uuid()))
            .filter(C::State.eq("open"))
            .filter(C::StartAt.gte(q.from));
        if let Some(until) = q.until {
            find = find.filter(C::StartAt.lt(until));
        }
        if let Some(p) = q.provider {
            find = find.filter(C::ProviderId.eq(p.as_uuid()));
        }
        if let Some(l) = q.location {
            find = find.filter(C::LocationId.eq(l.as_uuid()));
        }
        find.order_by_asc(C::StartAt)
            .order_by_asc(C::Id)
            .limit(u64::from(q.limit))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(slot_from)
            .collect()
    }

    async fn slot(&self, id: SlotId) -> Result<Option<Slot>, RepoError> {
        slot::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(slot_from)
            .transpose()
    }

    async fn book(&self, a: &Appointment) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        if !take(&txn, a.slot, a.id).await? {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(false);
        }
        appointment::Entity::insert(appointment::ActiveModel {
            id: Set(a.id.as_uuid()),
            organization_id: Set(a.organization.as_uuid()),
            patient_id: Set(a.patient.as_uuid()),
            slot_id: Set(a.slot.as_uuid()),
            provider_id: Set(a.provider.as_uuid()),
            location_id: Set(a.location.as_uuid()),
            visit_type_id: Set(a.visit_type.as_uuid()),
            start_at: Set(a.time.start),
            end_at: Set(a.time.end),
            reason: Set(a.reason.clone()),
            booked_by: Set(a.booked_by.as_uuid()),
            booked_at: Set(a.booked_at),
            state: Set("booked".to_owned()),
            cancelled_at: Set(None),
            cancelled_by: Set(None),
            cancel_reason: Set(None),
            reminded_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        txn.commit().await.map_err(repo_err)?;
        Ok(true)
    }

    async fn reschedule(&self, id: AppointmentId, to: &Slot) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        let Some(current) = appointment::Entity::find_by_id(id.as_uuid())
            .filter(appointment::Column::State.eq("booked"))
            .one(&txn)
            .await
            .map_err(repo_err)?
        else {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(false);
        };
        // The new slot first: if it is gone, nothing has changed.
        if !take(&txn, to.id, id).await? {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(false);
        }
        free(&txn, current.slot_id, id).await?;
        appointment::Entity::update_many()
            .col_expr(appointment::Column::SlotId, Expr::value(to.id.as_uuid()))
            .col_expr(
                appointment::Column::ProviderId,
                Expr::value(to.provider.as_uuid()),
            )
            .col_expr(
                appointment::Column::LocationId,
                Expr::value(to.location.as_uuid()),
            )
            .col_expr(appointment::Column::StartAt, Expr::value(to.time.start))
            .col_expr(appointment::Column::EndAt, Expr::value(to.time.end))
            // A new time gets its own reminder.
            .col_expr(
                appointment::Column::RemindedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(appointment::Column::Id.eq(id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        txn.commit().await.map_err(repo_err)?;
        Ok(true)
    }

    async fn cancel(
        &self,
        id: AppointmentId,
        by: AccountId,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        let Some(current) = appointment::Entity::find_by_id(id.as_uuid())
            .one(&txn)
            .await
            .map_err(repo_err)?
        else {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(false);
        };
        let done = appointment::Entity::update_many()
            .col_expr(appointment::Column::State, Expr::value("cancelled"))
            .col_expr(appointment::Column::CancelledAt, Expr::value(at))
            .col_expr(appointment::Column::CancelledBy, Expr::value(by.as_uuid()))
            .col_expr(appointment::Column::CancelReason, Expr::value(reason))
            .filter(appointment::Column::Id.eq(id.as_uuid()))
            .filter(appointment::Column::State.eq("booked"))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        if done.rows_affected != 1 {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(false);
        }
        free(&txn, current.slot_id, id).await?;
        txn.commit().await.map_err(repo_err)?;
        Ok(true)
    }

    async fn appointments_of(&self, patient: PatientId) -> Result<Vec<Appointment>, RepoError> {
        appointment::Entity::find()
            .filter(appointment::Column::PatientId.eq(patient.as_uuid()))
            .order_by_asc(appointment::Column::StartAt)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(appointment_from)
            .collect()
    }

    async fn practitioners_of(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<(salus_domain::PractitionerId, String)>, RepoError> {
        use crate::entity::practitioner;
        let rows: Vec<(uuid::Uuid, String)> = practitioner::Entity::find()
            .select_only()
            .column(practitioner::Column::Id)
            .column(practitioner::Column::Name)
            .filter(practitioner::Column::OrganizationId.eq(organization.as_uuid()))
            .order_by_asc(practitioner::Column::Name)
            .limit(1_000)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| (salus_domain::PractitionerId::from_uuid(id), name))
            .collect())
    }

    async fn provider(&self, id: ProviderId) -> Result<Option<Provider>, RepoError> {
        Ok(bookable_provider::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(provider_from))
    }

    async fn upcoming_of(
        &self,
        patient: PatientId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, RepoError> {
        upcoming_query(patient, now)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(appointment_from)
            .collect()
    }

    async fn locations_of(&self, organization: OrganizationId) -> Result<Vec<Location>, RepoError> {
        location::Entity::find()
            .filter(location::Column::OrganizationId.eq(organization.as_uuid()))
            .order_by_asc(location::Column::Name)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(location_from)
            .collect()
    }

    async fn providers_of(&self, organization: OrganizationId) -> Result<Vec<Provider>, RepoError> {
        Ok(bookable_provider::Entity::find()
            .filter(bookable_provider::Column::OrganizationId.eq(organization.as_uuid()))
            .order_by_asc(bookable_provider::Column::Name)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(provider_from)
            .collect())
    }

    async fn visit_types_of(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<VisitType>, RepoError> {
        visit_type::Entity::find()
            .filter(visit_type::Column::OrganizationId.eq(organization.as_uuid()))
            .order_by_asc(visit_type::Column::Name)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(visit_type_from)
            .collect()
    }

    async fn set_blocked(&self, id: SlotId, blocked: bool) -> Result<bool, RepoError> {
        let (from, to) = if blocked {
            ("open", "blocked")
        } else {
            ("blocked", "open")
        };
        let done = slot::Entity::update_many()
            .col_expr(slot::Column::State, Expr::value(to))
            .filter(slot::Column::Id.eq(id.as_uuid()))
            .filter(slot::Column::State.eq(from))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn remove_open_slots(
        &self,
        provider: ProviderId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        Ok(slot::Entity::delete_many()
            .filter(slot::Column::ProviderId.eq(provider.as_uuid()))
            .filter(slot::Column::State.eq("open"))
            .filter(slot::Column::StartAt.gte(from))
            .filter(slot::Column::StartAt.lt(until))
            .exec(&self.db)
            .await
            .map_err(repo_err)?
            .rows_affected)
    }

    async fn slots_between(
        &self,
        organization: OrganizationId,
        provider: Option<ProviderId>,
        location: Option<LocationId>,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Slot>, RepoError> {
        use slot::Column as C;
        let mut find = slot::Entity::find()
            .filter(C::OrganizationId.eq(organization.as_uuid()))
            .filter(C::StartAt.gte(from))
            .filter(C::StartAt.lt(until));
        if let Some(p) = provider {
            find = find.filter(C::ProviderId.eq(p.as_uuid()));
        }
        if let Some(l) = location {
            find = find.filter(C::LocationId.eq(l.as_uuid()));
        }
        find.order_by_asc(C::StartAt)
            .order_by_asc(C::ProviderId)
            // A week of a busy organisation fits; a runaway one does not fill the memory.
            .limit(5_000)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(slot_from)
            .collect()
    }

    async fn appointments_by_id(
        &self,
        ids: &[AppointmentId],
    ) -> Result<Vec<Appointment>, RepoError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows = appointment::Entity::find()
                .filter(
                    appointment::Column::Id
                        .is_in(chunk.iter().map(|a| a.as_uuid()).collect::<Vec<_>>()),
                )
                .all(&self.db)
                .await
                .map_err(repo_err)?;
            for r in rows {
                out.push(appointment_from(r)?);
            }
        }
        Ok(out)
    }

    async fn cancel_cutoff(&self, organization: OrganizationId) -> Result<Option<u32>, RepoError> {
        scheduling_setting::Entity::find_by_id(organization.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(|r| {
                u32::try_from(r.cancel_cutoff_hours)
                    .map_err(|_| RepoError::Corrupt("scheduling_settings"))
            })
            .transpose()
    }

    async fn set_cancel_cutoff(
        &self,
        organization: OrganizationId,
        hours: u32,
    ) -> Result<(), RepoError> {
        let hours = i32::try_from(hours).map_err(|_| RepoError::Corrupt("cancel_cutoff_hours"))?;
        scheduling_setting::Entity::insert(scheduling_setting::ActiveModel {
            organization_id: Set(organization.as_uuid()),
            cancel_cutoff_hours: Set(hours),
        })
        .on_conflict(
            OnConflict::column(scheduling_setting::Column::OrganizationId)
                .update_column(scheduling_setting::Column::CancelCutoffHours)
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn scheduling_organizations(&self) -> Result<Vec<OrganizationId>, RepoError> {
        let kinds: Vec<uuid::Uuid> = availability_template::Entity::find()
            .select_only()
            .column(availability_template::Column::VisitTypeId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut orgs: Vec<uuid::Uuid> = visit_type::Entity::find()
            .select_only()
            .column(visit_type::Column::OrganizationId)
            .filter(visit_type::Column::Id.is_in(kinds))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        orgs.sort_unstable();
        orgs.dedup();
        Ok(orgs.into_iter().map(OrganizationId::from_uuid).collect())
    }

    async fn join_waitlist(&self, e: &WaitlistEntry) -> Result<bool, RepoError> {
        let done = waitlist::Entity::insert(waitlist::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            organization_id: Set(e.organization.as_uuid()),
            patient_id: Set(e.patient.as_uuid()),
            appointment_id: Set(e.appointment.as_uuid()),
            visit_type_id: Set(e.visit_type.as_uuid()),
            created_at: Set(e.created_at),
            notified_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(waitlist::Column::AppointmentId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(done == 1)
    }

    async fn leave_waitlist(&self, appointment: AppointmentId) -> Result<bool, RepoError> {
        Ok(waitlist::Entity::delete_many()
            .filter(waitlist::Column::AppointmentId.eq(appointment.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(repo_err)?
            .rows_affected
            == 1)
    }

    async fn waitlist_entry(
        &self,
        appointment: AppointmentId,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        Ok(waitlist::Entity::find()
            .filter(waitlist::Column::AppointmentId.eq(appointment.as_uuid()))
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(waitlist_from))
    }

    async fn waiting_for(
        &self,
        organization: OrganizationId,
        visit_type: VisitTypeId,
        after: DateTime<Utc>,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let entries = waitlist::Entity::find()
            .filter(waitlist::Column::OrganizationId.eq(organization.as_uuid()))
            .filter(waitlist::Column::VisitTypeId.eq(visit_type.as_uuid()))
            .order_by_asc(waitlist::Column::CreatedAt)
            .order_by_asc(waitlist::Column::Id)
            .limit(200)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // Only those still holding a booked appointment later than the freed time.
        let later: std::collections::BTreeSet<uuid::Uuid> = appointment::Entity::find()
            .select_only()
            .column(appointment::Column::Id)
            .filter(
                appointment::Column::Id
                    .is_in(entries.iter().map(|e| e.appointment_id).collect::<Vec<_>>()),
            )
            .filter(appointment::Column::State.eq("booked"))
            .filter(appointment::Column::StartAt.gt(after))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .collect();
        Ok(entries
            .into_iter()
            .filter(|e| later.contains(&e.appointment_id))
            .map(waitlist_from)
            .collect())
    }

    async fn mark_notified(
        &self,
        appointments: &[AppointmentId],
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        if appointments.is_empty() {
            return Ok(());
        }
        waitlist::Entity::update_many()
            .col_expr(waitlist::Column::NotifiedAt, Expr::value(at))
            .filter(
                waitlist::Column::AppointmentId
                    .is_in(appointments.iter().map(|a| a.as_uuid()).collect::<Vec<_>>()),
            )
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(())
    }

    async fn due_reminders(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, RepoError> {
        appointment::Entity::find()
            .filter(appointment::Column::State.eq("booked"))
            .filter(appointment::Column::StartAt.gt(from))
            .filter(appointment::Column::StartAt.lte(until))
            .filter(appointment::Column::RemindedAt.is_null())
            .order_by_asc(appointment::Column::StartAt)
            .limit(500)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(appointment_from)
            .collect()
    }

    async fn take_reminder(&self, id: AppointmentId, at: DateTime<Utc>) -> Result<bool, RepoError> {
        let done = appointment::Entity::update_many()
            .col_expr(appointment::Column::RemindedAt, Expr::value(at))
            .filter(appointment::Column::Id.eq(id.as_uuid()))
            .filter(appointment::Column::RemindedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait as _, QueryTrait as _};

    /// Every booking reads the patient's upcoming appointments: by the patient's index, never
    /// by a scan of every booked appointment (which grew slower with each booking).
    #[tokio::test]
    async fn a_patients_upcoming_appointments_are_read_by_the_patients_index() {
        let store = Store::connect("sqlite::memory:", crate::PoolSettings::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let query = upcoming_query(
            PatientId::from_uuid(uuid::Uuid::nil()),
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 4, 12, 0, 0).unwrap(),
        )
        .build(sea_orm::DbBackend::Sqlite);
        let plan = store
            .db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", query.sql),
                query.values.map(|v| v.0).unwrap_or_default(),
            ))
            .await
            .unwrap();
        let steps: Vec<String> = plan
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect();
        assert!(
            steps.iter().any(|s| s.contains("ix_appointments_patient")),
            "{steps:?}"
        );
    }
}
