//! What scheduling emails: those waiting for an earlier time when one opens, and a reminder
//! before each visit. Both say only that something waits or when and where the visit is —
//! never the kind of visit, the reason, or the provider.

use super::service::SchedulingService;
use super::{Appointment, AppointmentState};
use crate::repo::RepoError;
use chrono::Duration;

impl SchedulingService {
    /// Emails the accounts of a chart; a mail that cannot be handed over is logged by the
    /// adapter and does not undo what happened.
    async fn email_chart(
        &self,
        patient: crate::ids::PatientId,
        subject: &str,
        body: &str,
    ) -> Result<(), RepoError> {
        crate::account::email_chart(
            self.ports().accounts.as_ref(),
            self.ports().mailer.as_ref(),
            patient,
            subject,
            body,
        )
        .await
    }

    /// The clinic changed a patient's appointment (moved or cancelled it): their accounts are
    /// told that something changed, and where to see it — not what or why.
    pub(super) async fn tell_changed(
        &self,
        patient: crate::ids::PatientId,
    ) -> Result<(), RepoError> {
        let body = format!(
            "Hello,\n\nYour clinic changed one of your appointments. Sign in to see it: \
             {}/appointments\n",
            self.ports().public_url
        );
        self.email_chart(patient, "An appointment changed", &body)
            .await
    }

    /// A time of `freed`'s kind opened (a cancellation, a move): everyone waiting with a later
    /// appointment of that kind is told, first come first, and marked as told. The time is
    /// theirs only if they book it.
    pub(super) async fn tell_waiting(&self, freed: &Appointment) -> Result<(), RepoError> {
        if freed.time.start <= self.ports().clock.now() {
            return Ok(());
        }
        let waiting = self
            .ports()
            .schedule
            .waiting_for(freed.organization, freed.visit_type, freed.time.start)
            .await?;
        if waiting.is_empty() {
            return Ok(());
        }
        let body = format!(
            "Hello,\n\nAn earlier appointment time has opened at your clinic. It is not held \
             for you: if you want it, sign in and move your appointment before someone else \
             books it.\n{}/appointments\n",
            self.ports().public_url
        );
        for entry in &waiting {
            self.email_chart(entry.patient, "An earlier appointment time opened", &body)
                .await?;
        }
        let told: Vec<_> = waiting.iter().map(|w| w.appointment).collect();
        self.ports()
            .schedule
            .mark_notified(&told, self.ports().clock.now())
            .await
    }

    /// Sends the reminders of booked visits starting within `hours_before` from now that have
    /// none yet: the date, time and place only. Every node may run it: each reminder is taken
    /// by one. Answers how many were sent.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn send_reminders(&self, hours_before: u32) -> Result<u64, RepoError> {
        let now = self.ports().clock.now();
        let due = self
            .ports()
            .schedule
            .due_reminders(now, now + Duration::hours(i64::from(hours_before)))
            .await?;
        let mut sent = 0;
        for a in due {
            if a.state != AppointmentState::Booked
                || !self.ports().schedule.take_reminder(a.id, now).await?
            {
                continue;
            }
            let Some(location) = self.ports().schedule.location(a.location).await? else {
                continue;
            };
            let local = a.time.start.with_timezone(&location.time_zone);
            // A video visit's place is the link on the appointment's page, not the address.
            let video = self
                .ports()
                .schedule
                .visit_type(a.visit_type)
                .await?
                .is_some_and(|k| k.mode == super::VisitMode::Video);
            let place = if video {
                "a video call (the link is on your appointment's page)".to_owned()
            } else {
                format!("{}, {}", location.name, location.address)
            };
            let body = format!(
                "Hello,\n\nThis is a reminder of your appointment on {} at {} ({}).\n\
                 Place: {place}\n\nTo see, move or cancel it, sign in: {}/appointments\n",
                local.format("%A %-d %B %Y"),
                local.format("%H:%M"),
                location.time_zone.name(),
                self.ports().public_url
            );
            self.email_chart(a.patient, "Appointment reminder", &body)
                .await?;
            sent += 1;
        }
        Ok(sent)
    }
}
