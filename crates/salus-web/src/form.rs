//! What was wrong with a form, field by field: each message is shown beside its field and
//! summarised at the top of the page with a link to the field (`_problems.html`), so a
//! refused form never leaves the person hunting for the reason.

/// The problems of one form, in the form's order, by field id.
#[derive(Debug, Default, Clone)]
pub(crate) struct Problems(Vec<(&'static str, String)>);

impl Problems {
    /// One problem with `field`.
    pub(crate) fn one(field: &'static str, message: impl Into<String>) -> Self {
        Self(vec![(field, message.into())])
    }

    /// The message for `field`, if it has one.
    pub(crate) fn of(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every problem as (field id, message).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_found_by_its_field() {
        let p = Problems::one("birth_date", "Enter the date of birth as YYYY-MM-DD.");
        assert_eq!(
            p.of("birth_date"),
            Some("Enter the date of birth as YYYY-MM-DD.")
        );
        assert_eq!(p.of("name"), None);
        assert!(!p.is_empty());
        assert!(Problems::default().is_empty());
    }
}
