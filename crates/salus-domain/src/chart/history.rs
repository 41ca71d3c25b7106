//! The access history of a chart: who read or changed what, for the patient.

use super::*;

impl RecordsService {
    /// Who accessed the actor's own chart, newest first.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn access_history(
        &self,
        actor: &Actor,
        before: Option<i64>,
        limit: u32,
        request_id: Option<&str>,
    ) -> Result<Vec<AccessEntry>, ReadError> {
        let mut a = Audit {
            actor,
            action: Action::ViewAccessHistory,
            export: None,
            patient: actor.own_chart(),
            kind: None,
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, None).await?;
        // This view is itself recorded, and shows in the list it answers.
        self.audit(&a, Outcome::Allowed).await?;
        Ok(self
            .p
            .log
            .history(chart.id, before, limit.clamp(1, MAX_LIST))
            .await?)
    }
}
