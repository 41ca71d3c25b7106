//! The staff's side of scheduling: the front desk and administrators set up locations,
//! bookable providers, visit types and weekly templates, take days off and block single
//! slots, and see a day or week of a provider or location. Who may is `decide`'s answer for
//! `Action::Book` on the organisation.

use super::service::SchedulingService;
use super::{
    Appointment, DayOff, Location, OnlineBooking, Provider, SchedulingError, Setup, Slot,
    SlotState, Template, VisitMode, VisitType, WeeklyTemplate,
};
use crate::access::{Action, Actor, Target, decide};
use crate::audit::{BookingStep, Outcome};
use crate::ids::{
    LocationId, OrganizationId, PatientId, ProviderId, SlotId, TemplateId, VisitTypeId,
};
use crate::repo::RepoError;
use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use std::collections::{BTreeMap, BTreeSet};

/// A new location as a form or the API gives it.
#[derive(Debug, Clone, Copy)]
pub struct NewLocation<'a> {
    pub name: &'a str,
    pub address: &'a str,
    /// An IANA zone name ("America/New_York").
    pub time_zone: &'a str,
}

/// A new bookable provider.
#[derive(Debug, Clone, Copy)]
pub struct NewProvider<'a> {
    /// Their entry in the practitioner directory (an id), or empty.
    pub practitioner: &'a str,
    /// The name patients see; the directory's name when empty and one is linked.
    pub name: &'a str,
    /// Their video room (`https://…`), needed for video visits.
    pub video_url: &'a str,
}

/// A new visit type, field by field as given.
#[derive(Debug, Clone, Copy)]
pub struct NewVisitType<'a> {
    pub name: &'a str,
    pub minutes: &'a str,
    /// `in_person` or `video`.
    pub mode: &'a str,
    /// `everyone`, `existing_patients` or `staff_only`.
    pub online: &'a str,
    pub max_per_patient: &'a str,
    pub bring: &'a str,
}

/// A new weekly template, field by field as given.
#[derive(Debug, Clone, Copy)]
pub struct NewTemplate<'a> {
    pub provider: &'a str,
    pub location: &'a str,
    pub visit_type: &'a str,
    /// `monday` … `sunday`.
    pub weekday: &'a str,
    /// `HH:MM`, local time at the location.
    pub start: &'a str,
    pub end: &'a str,
    /// `YYYY-MM-DD`; today when empty.
    pub valid_from: &'a str,
    /// `YYYY-MM-DD`; open-ended when empty.
    pub valid_until: &'a str,
}

/// One slot of a day or week view, with the appointment in it and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayEntry {
    pub slot: Slot,
    pub appointment: Option<Appointment>,
    /// The patient's name, for a booked slot.
    pub patient_name: Option<String>,
}

const fn input(code: &'static str, message: &'static str) -> SchedulingError {
    SchedulingError::Input { code, message }
}

/// Text of one line, 1 to `max` characters.
fn line(text: &str, max: usize) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && t.chars().count() <= max && !t.chars().any(char::is_control))
        .then(|| t.to_owned())
}

fn weekday(text: &str) -> Option<Weekday> {
    match text.trim().to_ascii_lowercase().as_str() {
        "monday" | "mon" => Some(Weekday::Mon),
        "tuesday" | "tue" => Some(Weekday::Tue),
        "wednesday" | "wed" => Some(Weekday::Wed),
        "thursday" | "thu" => Some(Weekday::Thu),
        "friday" | "fri" => Some(Weekday::Fri),
        "saturday" | "sat" => Some(Weekday::Sat),
        "sunday" | "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// A weekday's name as templates take it.
pub fn weekday_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

impl SchedulingService {
    /// The staff member's organisation when they may keep its schedule; `Forbidden` else.
    fn keeper(&self, actor: &Actor) -> Result<OrganizationId, SchedulingError> {
        let Actor::Staff { organization, .. } = actor else {
            return Err(SchedulingError::Forbidden);
        };
        let target = Target::Organization {
            organization: *organization,
        };
        if decide(actor, Action::Book, target, self.ports().clock.now()).is_allowed() {
            Ok(*organization)
        } else {
            Err(SchedulingError::Forbidden)
        }
    }

    /// An organisation's set-up: with its weekly templates (staff's), or without (what
    /// booking needs).
    pub(super) async fn setup_of(
        &self,
        organization: OrganizationId,
        templates: bool,
    ) -> Result<Setup, SchedulingError> {
        let s = &self.ports().schedule;
        Ok(Setup {
            locations: s.locations_of(organization).await?,
            providers: s.providers_of(organization).await?,
            visit_types: s.visit_types_of(organization).await?,
            templates: if templates {
                s.templates_of(organization).await?
            } else {
                Vec::new()
            },
            cancel_cutoff_hours: self.cutoff(organization).await?,
            directory: Vec::new(),
        })
    }

    /// Staff who keep the schedule: the organisation's set-up.
    ///
    /// # Errors
    /// `Forbidden` for anyone else.
    pub async fn setup(&self, actor: &Actor) -> Result<Setup, SchedulingError> {
        let organization = self.keeper(actor)?;
        let mut setup = self.setup_of(organization, true).await?;
        setup.directory = self.ports().schedule.practitioners_of(organization).await?;
        Ok(setup)
    }

    /// Adds a location.
    ///
    /// # Errors
    /// `Forbidden`; `Input` (`invalid_name`, `invalid_address`, `invalid_time_zone`).
    pub async fn add_location(
        &self,
        actor: &Actor,
        new: NewLocation<'_>,
    ) -> Result<Location, SchedulingError> {
        let organization = self.keeper(actor)?;
        let location = Location {
            id: LocationId::generate(self.ports().ids.as_ref()),
            organization,
            name: line(new.name, 200).ok_or(input(
                "invalid_name",
                "Give a name of at most 200 characters.",
            ))?,
            address: line(new.address, 500).ok_or(input(
                "invalid_address",
                "Give the address in one line of at most 500 characters.",
            ))?,
            time_zone: new.time_zone.trim().parse().map_err(|_| {
                input(
                    "invalid_time_zone",
                    "Give a time zone by its name, such as America/New_York.",
                )
            })?,
        };
        self.ports().schedule.create_location(&location).await?;
        Ok(location)
    }

    /// Adds a bookable provider.
    ///
    /// # Errors
    /// `Forbidden`; `Input` (`invalid_name`, `invalid_video_url`).
    pub async fn add_provider(
        &self,
        actor: &Actor,
        new: NewProvider<'_>,
    ) -> Result<Provider, SchedulingError> {
        let organization = self.keeper(actor)?;
        let video = new.video_url.trim();
        let video_url = if video.is_empty() {
            None
        } else if video.starts_with("https://")
            && video.len() <= 500
            && !video.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Some(video.to_owned())
        } else {
            return Err(input(
                "invalid_video_url",
                "Give the video room as an https:// address.",
            ));
        };
        let linked = if new.practitioner.trim().is_empty() {
            None
        } else {
            let id = crate::ids::PractitionerId::parse(new.practitioner.trim()).ok();
            let directory = self.ports().schedule.practitioners_of(organization).await?;
            Some(
                id.and_then(|id| directory.into_iter().find(|(p, _)| *p == id))
                    .ok_or(input(
                        "invalid_practitioner",
                        "Choose a clinician of your practitioner directory, or none.",
                    ))?,
            )
        };
        let name = match (&linked, new.name.trim()) {
            (Some((_, directory_name)), "") => directory_name.as_str(),
            _ => new.name,
        };
        let provider = Provider {
            id: ProviderId::generate(self.ports().ids.as_ref()),
            organization,
            practitioner: linked.as_ref().map(|(id, _)| *id),
            name: line(name, 200).ok_or(input(
                "invalid_name",
                "Give a name of at most 200 characters.",
            ))?,
            active: true,
            video_url,
        };
        self.ports().schedule.create_provider(&provider).await?;
        Ok(provider)
    }

    /// Adds a visit type.
    ///
    /// # Errors
    /// `Forbidden`; `Input` for a field that is not valid; `Input` (`visit_type_exists`)
    /// for a name the organisation uses.
    pub async fn add_visit_type(
        &self,
        actor: &Actor,
        new: NewVisitType<'_>,
    ) -> Result<VisitType, SchedulingError> {
        let organization = self.keeper(actor)?;
        let bring = new.bring.trim();
        let kind = VisitType {
            id: VisitTypeId::generate(self.ports().ids.as_ref()),
            organization,
            name: line(new.name, 200).ok_or(input(
                "invalid_name",
                "Give a name of at most 200 characters.",
            ))?,
            minutes: new
                .minutes
                .trim()
                .parse()
                .ok()
                .filter(|m| (5..=240).contains(m) && m % 5 == 0)
                .ok_or(input(
                    "invalid_minutes",
                    "Give the length in minutes: 5 to 240, in steps of 5.",
                ))?,
            mode: match new.mode.trim() {
                "in_person" => VisitMode::InPerson,
                "video" => VisitMode::Video,
                _ => return Err(input("invalid_mode", "Choose in person or video.")),
            },
            online: match new.online.trim() {
                "everyone" => OnlineBooking::Everyone,
                "existing_patients" => OnlineBooking::ExistingPatients,
                "staff_only" => OnlineBooking::StaffOnly,
                _ => {
                    return Err(input(
                        "invalid_online",
                        "Choose who may book it online: everyone, existing patients, or staff only.",
                    ));
                }
            },
            max_per_patient: new
                .max_per_patient
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or(input(
                    "invalid_max_per_patient",
                    "Give how many upcoming visits of this kind one patient may hold: 1 to 10.",
                ))?,
            bring: if bring.is_empty() {
                None
            } else {
                Some(line(bring, 500).ok_or(input(
                    "invalid_bring",
                    "Say what to bring in one line of at most 500 characters.",
                ))?)
            },
        };
        match self.ports().schedule.create_visit_type(&kind).await {
            Ok(()) => Ok(kind),
            Err(RepoError::Conflict(_)) => Err(input(
                "visit_type_exists",
                "There is a visit type of that name already.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a weekly template and generates its slots for the horizon at once.
    ///
    /// # Errors
    /// `Forbidden`; `Input` for a field that is not valid or names something of another
    /// organisation; `no_video_room` for a video visit type with a provider who has none.
    pub async fn add_template(
        &self,
        actor: &Actor,
        new: NewTemplate<'_>,
    ) -> Result<Template, SchedulingError> {
        let organization = self.keeper(actor)?;
        let setup = self.setup_of(organization, false).await?;
        let pick = |text: &str| uuid::Uuid::parse_str(text.trim()).ok();
        let provider = pick(new.provider)
            .map(ProviderId::from_uuid)
            .and_then(|id| setup.provider(id))
            .ok_or(input("invalid_provider", "Choose one of your providers."))?;
        let location = pick(new.location)
            .map(LocationId::from_uuid)
            .and_then(|id| setup.location(id))
            .ok_or(input("invalid_location", "Choose one of your locations."))?;
        let kind = pick(new.visit_type)
            .map(VisitTypeId::from_uuid)
            .and_then(|id| setup.visit_type(id))
            .ok_or(input(
                "invalid_visit_type",
                "Choose one of your visit types.",
            ))?;
        if kind.mode == VisitMode::Video && provider.video_url.is_none() {
            return Err(input(
                "no_video_room",
                "This provider has no video room for video visits.",
            ));
        }
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
        let start = time(new.start).ok_or(input("invalid_start", "Give the start as HH:MM."))?;
        let end = time(new.end).filter(|e| *e > start).ok_or(input(
            "invalid_end",
            "Give the end as HH:MM, after the start.",
        ))?;
        let today = self
            .ports()
            .clock
            .now()
            .with_timezone(&location.time_zone)
            .date_naive();
        let valid_from = if new.valid_from.trim().is_empty() {
            today
        } else {
            date(new.valid_from).ok_or(input(
                "invalid_valid_from",
                "Give the first day as YYYY-MM-DD.",
            ))?
        };
        let valid_until = if new.valid_until.trim().is_empty() {
            None
        } else {
            Some(
                date(new.valid_until)
                    .filter(|u| *u >= valid_from)
                    .ok_or(input(
                        "invalid_valid_until",
                        "Give the last day as YYYY-MM-DD, on or after the first.",
                    ))?,
            )
        };
        let template = Template {
            id: TemplateId::generate(self.ports().ids.as_ref()),
            organization,
            provider: provider.id,
            location: location.id,
            visit_type: kind.id,
            weekly: WeeklyTemplate {
                weekday: weekday(new.weekday)
                    .ok_or(input("invalid_weekday", "Choose a day of the week."))?,
                start,
                end,
                minutes: kind.minutes,
                valid_from,
                valid_until,
            },
        };
        self.ports().schedule.create_template(&template).await?;
        self.generate_slots(organization, today, self.ports().horizon_days)
            .await?;
        Ok(template)
    }

    /// Takes a provider's day off: no new slots that day, and its open ones go (booked ones
    /// stay, for the front desk to move or cancel with a reason).
    ///
    /// # Errors
    /// `Forbidden`; `Input` (`invalid_provider`, `invalid_date`, `invalid_reason`).
    pub async fn add_day_off(
        &self,
        actor: &Actor,
        provider: &str,
        day: &str,
        reason: &str,
    ) -> Result<u64, SchedulingError> {
        let organization = self.keeper(actor)?;
        let setup = self.setup_of(organization, true).await?;
        let provider = uuid::Uuid::parse_str(provider.trim())
            .ok()
            .map(ProviderId::from_uuid)
            .and_then(|id| setup.provider(id))
            .ok_or(input("invalid_provider", "Choose one of your providers."))?;
        let day = date(day).ok_or(input("invalid_date", "Give the day as YYYY-MM-DD."))?;
        let reason = reason.trim();
        let reason = if reason.is_empty() {
            None
        } else {
            Some(line(reason, 200).ok_or(input(
                "invalid_reason",
                "Give the reason in one line of at most 200 characters.",
            ))?)
        };
        self.ports()
            .schedule
            .add_day_off(&DayOff {
                provider: provider.id,
                date: day,
                reason,
            })
            .await?;
        // The day in each zone the provider is seen in.
        let zones: BTreeSet<&str> = setup
            .templates
            .iter()
            .filter(|t| t.provider == provider.id)
            .filter_map(|t| setup.location(t.location))
            .map(|l| l.time_zone.name())
            .collect();
        let mut removed = 0;
        for zone in zones {
            let Ok(tz) = zone.parse::<chrono_tz::Tz>() else {
                continue;
            };
            let (Some(from), Some(until)) = (
                day_start(tz, day),
                day.succ_opt().and_then(|d| day_start(tz, d)),
            ) else {
                continue;
            };
            removed += self
                .ports()
                .schedule
                .remove_open_slots(provider.id, from, until)
                .await?;
        }
        Ok(removed)
    }

    /// Sets the organisation's cancellation cut-off (0 to 168 hours).
    ///
    /// # Errors
    /// `Forbidden`; `Input` (`invalid_cutoff`).
    pub async fn set_cancel_cutoff(
        &self,
        actor: &Actor,
        hours: &str,
    ) -> Result<u32, SchedulingError> {
        let organization = self.keeper(actor)?;
        let hours = hours
            .trim()
            .parse()
            .ok()
            .filter(|h| *h <= 168)
            .ok_or(input(
                "invalid_cutoff",
                "Give the cut-off in whole hours: 0 to 168.",
            ))?;
        self.ports()
            .schedule
            .set_cancel_cutoff(organization, hours)
            .await?;
        Ok(hours)
    }

    /// Blocks an open slot (`blocked`) or opens a blocked one again.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound` for a slot of another organisation; `SlotTaken` when the slot
    /// is not in a state that allows it (booked, or already so).
    pub async fn block_slot(
        &self,
        actor: &Actor,
        slot: SlotId,
        blocked: bool,
    ) -> Result<(), SchedulingError> {
        let organization = self.keeper(actor)?;
        self.ports()
            .schedule
            .slot(slot)
            .await?
            .filter(|s| s.organization == organization)
            .ok_or(SchedulingError::NotFound)?;
        if self.ports().schedule.set_blocked(slot, blocked).await? {
            Ok(())
        } else {
            Err(SchedulingError::SlotTaken)
        }
    }

    /// Staff who keep the schedule: `days` (1 to 7) from `from` (in the zone of the location,
    /// or of the organisation's first location) of one provider or location or all, every
    /// slot with its appointment and patient. Each patient shown is audited as looked at.
    ///
    /// # Errors
    /// `Forbidden`; `Input` (`invalid_days`).
    pub async fn day_view(
        &self,
        actor: &Actor,
        from: NaiveDate,
        days: u32,
        provider: Option<ProviderId>,
        location: Option<LocationId>,
        request_id: Option<&str>,
    ) -> Result<Vec<DayEntry>, SchedulingError> {
        let organization = self.keeper(actor)?;
        if !(1..=7).contains(&days) {
            return Err(input("invalid_days", "Show 1 to 7 days."));
        }
        let s = &self.ports().schedule;
        let locations = s.locations_of(organization).await?;
        let tz = location
            .and_then(|l| locations.iter().find(|x| x.id == l))
            .or(locations.first())
            .map_or(chrono_tz::UTC, |l| l.time_zone);
        let start = day_start(tz, from).unwrap_or_else(|| Utc.from_utc_datetime(&from.into()));
        let end_day = from + Duration::days(i64::from(days));
        let end = day_start(tz, end_day).unwrap_or_else(|| Utc.from_utc_datetime(&end_day.into()));
        let slots = s
            .slots_between(organization, provider, location, start, end)
            .await?;
        let booked: Vec<_> = slots
            .iter()
            .filter_map(|x| match x.state {
                SlotState::Booked(a) => Some(a),
                _ => None,
            })
            .collect();
        let appointments: BTreeMap<_, _> = s
            .appointments_by_id(&booked)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let mut names: BTreeMap<PatientId, String> = BTreeMap::new();
        for a in appointments.values() {
            if names.contains_key(&a.patient) {
                continue;
            }
            let name = self
                .ports()
                .patients
                .find(a.patient)
                .await?
                .map_or_else(String::new, |p| p.name.full());
            self.audit(
                actor,
                a.patient,
                BookingStep::Viewed,
                Outcome::Allowed,
                request_id,
            )
            .await?;
            names.insert(a.patient, name);
        }
        Ok(slots
            .into_iter()
            .map(|slot| {
                let appointment = match slot.state {
                    SlotState::Booked(a) => appointments.get(&a).cloned(),
                    _ => None,
                };
                let patient_name = appointment
                    .as_ref()
                    .and_then(|a| names.get(&a.patient).cloned());
                DayEntry {
                    slot,
                    appointment,
                    patient_name,
                }
            })
            .collect())
    }

    /// Front desk: the organisation's chart with this medical record number, to book for —
    /// its id and name. The lookup is audited on the chart like any look at its visits.
    ///
    /// # Errors
    /// `Forbidden` for other roles; `NotFound` for an unknown number.
    pub async fn chart_by_mrn(
        &self,
        actor: &Actor,
        mrn: &str,
        request_id: Option<&str>,
    ) -> Result<(PatientId, String), SchedulingError> {
        let organization = self.keeper(actor)?;
        let mrn = crate::text::Mrn::parse(mrn.trim()).map_err(|_| SchedulingError::NotFound)?;
        let chart = self
            .ports()
            .patients
            .find_by_mrn(organization, &mrn)
            .await?
            .ok_or(SchedulingError::NotFound)?;
        self.audit(
            actor,
            chart.id,
            BookingStep::Viewed,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok((chart.id, chart.name.full()))
    }

    /// Generates the slots of every organisation that has templates, for `horizon_days`
    /// from today in each location's calendar. Answers how many were new.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn generate_all(&self) -> Result<u64, SchedulingError> {
        let mut added = 0;
        let today = self.ports().clock.now().date_naive() - Duration::days(1);
        for organization in self.ports().schedule.scheduling_organizations().await? {
            added += self
                .generate_slots(organization, today, self.ports().horizon_days + 1)
                .await?;
        }
        Ok(added)
    }
}

/// The instant a day begins in `tz` (the first instant, when midnight is skipped).
fn day_start(tz: chrono_tz::Tz, day: NaiveDate) -> Option<chrono::DateTime<Utc>> {
    (0..4).find_map(|h| {
        tz.from_local_datetime(&day.and_hms_opt(h, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}
