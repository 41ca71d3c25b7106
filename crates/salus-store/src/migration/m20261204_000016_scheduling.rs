//! Scheduling: locations, bookable providers, visit types, weekly availability templates and
//! their exceptions, slots, appointments and the waitlist. A slot is booked by one appointment
//! at most: the booking is a conditional update of the slot, and a unique index over the
//! booked appointments' slots stands behind it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Locations {
    Table,
    Id,
    OrganizationId,
    Name,
    Address,
    TimeZone,
}

#[derive(DeriveIden, Clone, Copy)]
enum BookableProviders {
    Table,
    Id,
    OrganizationId,
    PractitionerId,
    Name,
    Active,
}

#[derive(DeriveIden, Clone, Copy)]
enum VisitTypes {
    Table,
    Id,
    OrganizationId,
    Name,
    Minutes,
    Mode,
    Online,
    MaxPerPatient,
    Bring,
}

#[derive(DeriveIden, Clone, Copy)]
enum AvailabilityTemplates {
    Table,
    Id,
    ProviderId,
    LocationId,
    VisitTypeId,
    Weekday,
    StartMinute,
    EndMinute,
    ValidFrom,
    ValidUntil,
}

#[derive(DeriveIden, Clone, Copy)]
enum AvailabilityExceptions {
    Table,
    Id,
    ProviderId,
    Day,
    Reason,
}

#[derive(DeriveIden, Clone, Copy)]
enum Slots {
    Table,
    Id,
    OrganizationId,
    ProviderId,
    LocationId,
    VisitTypeId,
    StartAt,
    EndAt,
    State,
    AppointmentId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Appointments {
    Table,
    Id,
    OrganizationId,
    PatientId,
    SlotId,
    ProviderId,
    LocationId,
    VisitTypeId,
    StartAt,
    EndAt,
    Reason,
    BookedBy,
    BookedAt,
    State,
    CancelledAt,
    CancelledBy,
    CancelReason,
}

#[derive(DeriveIden, Clone, Copy)]
enum Waitlist {
    Table,
    Id,
    OrganizationId,
    PatientId,
    AppointmentId,
    VisitTypeId,
    CreatedAt,
    NotifiedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

fn id(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().primary_key().to_owned()
}
fn uuid(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}
fn text(c: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}
fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().to_owned()
}
fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    cascade: bool,
) -> ForeignKeyCreateStatement {
    let mut f = ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned();
    if cascade {
        f.on_delete(ForeignKeyAction::Cascade);
    }
    f
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use AvailabilityExceptions as E;
        use AvailabilityTemplates as T;
        use BookableProviders as P;
        use Locations as L;
        use VisitTypes as V;
        let org = (Organizations::Table, Organizations::Id);
        m.create_table(
            Table::create()
                .table(L::Table)
                .col(id(L::Id))
                .col(uuid(L::OrganizationId))
                .col(text(L::Name, 120))
                .col(text(L::Address, 500))
                .col(text(L::TimeZone, 64))
                .foreign_key(&mut fk(
                    "fk_locations_org",
                    (L::Table, L::OrganizationId),
                    org,
                    false,
                ))
                .to_owned(),
        )
        .await?;
        let org = (Organizations::Table, Organizations::Id);
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(id(P::Id))
                .col(uuid(P::OrganizationId))
                .col(ColumnDef::new(P::PractitionerId).uuid())
                .col(text(P::Name, 300))
                .col(ColumnDef::new(P::Active).boolean().not_null())
                .foreign_key(&mut fk(
                    "fk_bookable_providers_org",
                    (P::Table, P::OrganizationId),
                    org,
                    false,
                ))
                .to_owned(),
        )
        .await?;
        let org = (Organizations::Table, Organizations::Id);
        m.create_table(
            Table::create()
                .table(V::Table)
                .col(id(V::Id))
                .col(uuid(V::OrganizationId))
                .col(text(V::Name, 120))
                .col(ColumnDef::new(V::Minutes).small_integer().not_null())
                // `in_person` or `video`.
                .col(text(V::Mode, 10))
                // `everyone`, `existing_patients` or `staff_only`.
                .col(text(V::Online, 20))
                .col(ColumnDef::new(V::MaxPerPatient).small_integer().not_null())
                .col(ColumnDef::new(V::Bring).text())
                .foreign_key(&mut fk(
                    "fk_visit_types_org",
                    (V::Table, V::OrganizationId),
                    org,
                    false,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_visit_types_org_name")
                .table(V::Table)
                .col(V::OrganizationId)
                .col(V::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(T::Table)
                .col(id(T::Id))
                .col(uuid(T::ProviderId))
                .col(uuid(T::LocationId))
                .col(uuid(T::VisitTypeId))
                // 0 = Monday … 6 = Sunday.
                .col(ColumnDef::new(T::Weekday).small_integer().not_null())
                // Wall-clock minutes after midnight in the location's zone.
                .col(ColumnDef::new(T::StartMinute).small_integer().not_null())
                .col(ColumnDef::new(T::EndMinute).small_integer().not_null())
                .col(ColumnDef::new(T::ValidFrom).date().not_null())
                .col(ColumnDef::new(T::ValidUntil).date())
                .foreign_key(&mut fk(
                    "fk_templates_provider",
                    (T::Table, T::ProviderId),
                    (P::Table, P::Id),
                    true,
                ))
                .foreign_key(&mut fk(
                    "fk_templates_location",
                    (T::Table, T::LocationId),
                    (L::Table, L::Id),
                    true,
                ))
                .foreign_key(&mut fk(
                    "fk_templates_visit_type",
                    (T::Table, T::VisitTypeId),
                    (V::Table, V::Id),
                    true,
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(E::Table)
                .col(id(E::Id))
                .col(uuid(E::ProviderId))
                .col(ColumnDef::new(E::Day).date().not_null())
                .col(ColumnDef::new(E::Reason).string_len(200))
                .foreign_key(&mut fk(
                    "fk_exceptions_provider",
                    (E::Table, E::ProviderId),
                    (P::Table, P::Id),
                    true,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_exceptions_provider_day")
                .table(E::Table)
                .col(E::ProviderId)
                .col(E::Day)
                .unique()
                .to_owned(),
        )
        .await?;
        let s = Slots::Table;
        m.create_table(
            Table::create()
                .table(s)
                .col(id(Slots::Id))
                .col(uuid(Slots::OrganizationId))
                .col(uuid(Slots::ProviderId))
                .col(uuid(Slots::LocationId))
                .col(uuid(Slots::VisitTypeId))
                .col(ts(Slots::StartAt).not_null())
                .col(ts(Slots::EndAt).not_null())
                // `open`, `blocked` or `booked`.
                .col(text(Slots::State, 8))
                .col(ColumnDef::new(Slots::AppointmentId).uuid())
                .foreign_key(&mut fk(
                    "fk_slots_provider",
                    (s, Slots::ProviderId),
                    (P::Table, P::Id),
                    true,
                ))
                .foreign_key(&mut fk(
                    "fk_slots_location",
                    (s, Slots::LocationId),
                    (L::Table, L::Id),
                    true,
                ))
                .foreign_key(&mut fk(
                    "fk_slots_visit_type",
                    (s, Slots::VisitTypeId),
                    (V::Table, V::Id),
                    true,
                ))
                .to_owned(),
        )
        .await?;
        // A provider has one slot at a time: generating again adds nothing twice.
        m.create_index(
            Index::create()
                .name("ux_slots_provider_start")
                .table(s)
                .col(Slots::ProviderId)
                .col(Slots::StartAt)
                .unique()
                .to_owned(),
        )
        .await?;
        // "The next available" of a visit type: open slots by start.
        m.create_index(
            Index::create()
                .name("ix_slots_search")
                .table(s)
                .col(Slots::OrganizationId)
                .col(Slots::VisitTypeId)
                .col(Slots::State)
                .col(Slots::StartAt)
                .to_owned(),
        )
        .await?;
        let a = Appointments::Table;
        m.create_table(
            Table::create()
                .table(a)
                .col(id(Appointments::Id))
                .col(uuid(Appointments::OrganizationId))
                .col(uuid(Appointments::PatientId))
                .col(uuid(Appointments::SlotId))
                .col(uuid(Appointments::ProviderId))
                .col(uuid(Appointments::LocationId))
                .col(uuid(Appointments::VisitTypeId))
                .col(ts(Appointments::StartAt).not_null())
                .col(ts(Appointments::EndAt).not_null())
                .col(ColumnDef::new(Appointments::Reason).text().not_null())
                .col(uuid(Appointments::BookedBy))
                .col(ts(Appointments::BookedAt).not_null())
                // `booked` or `cancelled`.
                .col(text(Appointments::State, 10))
                .col(ts(Appointments::CancelledAt))
                .col(ColumnDef::new(Appointments::CancelledBy).uuid())
                .col(ColumnDef::new(Appointments::CancelReason).text())
                .foreign_key(&mut fk(
                    "fk_appointments_patient",
                    (a, Appointments::PatientId),
                    (Patients::Table, Patients::Id),
                    true,
                ))
                .foreign_key(&mut fk(
                    "fk_appointments_slot",
                    (a, Appointments::SlotId),
                    (s, Slots::Id),
                    false,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_appointments_patient")
                .table(a)
                .col(Appointments::PatientId)
                .col(Appointments::StartAt)
                .to_owned(),
        )
        .await?;
        // Behind the conditional update: one booked appointment per slot.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_appointments_booked_slot ON appointments (slot_id) \
                 WHERE state = 'booked'",
            )
            .await?;
        let w = Waitlist::Table;
        m.create_table(
            Table::create()
                .table(w)
                .col(id(Waitlist::Id))
                .col(uuid(Waitlist::OrganizationId))
                .col(uuid(Waitlist::PatientId))
                // The later appointment the patient holds and would move.
                .col(uuid(Waitlist::AppointmentId))
                .col(uuid(Waitlist::VisitTypeId))
                .col(ts(Waitlist::CreatedAt).not_null())
                .col(ts(Waitlist::NotifiedAt))
                .foreign_key(&mut fk(
                    "fk_waitlist_appointment",
                    (w, Waitlist::AppointmentId),
                    (a, Appointments::Id),
                    true,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_waitlist_queue")
                .table(w)
                .col(Waitlist::OrganizationId)
                .col(Waitlist::VisitTypeId)
                .col(Waitlist::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Waitlist::Table.into_iden(),
            Appointments::Table.into_iden(),
            Slots::Table.into_iden(),
            AvailabilityExceptions::Table.into_iden(),
            AvailabilityTemplates::Table.into_iden(),
            VisitTypes::Table.into_iden(),
            BookableProviders::Table.into_iden(),
            Locations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
