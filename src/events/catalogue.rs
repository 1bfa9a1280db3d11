//! Every event Omnirail records, as one typed catalogue: the spine records an [`EventType`],
//! stores and signs its name (`omni.journey.created`), and the timeline shows the name without
//! `omni.`. Webhook subscriptions, notification rules and the docs name events from here.

macro_rules! catalogue {
    ($($variant:ident = $text:literal),+ $(,)?) => {
        /// An event's type. Its name is what webhooks send as `type` and `eventTypes` match.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),+ }

        impl EventType {
            /// Every event type, in the catalogue's order.
            pub const ALL: &'static [Self] = &[$(EventType::$variant),+];

            /// The event's name: `omni.journey.created`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $text),+ }
            }

            /// The type a name names; `None` for a name outside the catalogue.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($text => Some(EventType::$variant),)+ _ => None }
            }
        }
    };
}

catalogue! {
    JourneyCreated = "omni.journey.created",
    JourneyAdvanced = "omni.journey.advanced",
    JourneyAssigned = "omni.journey.assigned",
    JourneyCompleted = "omni.journey.completed",
    JourneyCancelled = "omni.journey.cancelled",
    JourneySlaAtRisk = "omni.journey.sla_at_risk",
    JourneySlaBreached = "omni.journey.sla_breached",
    JourneyStepOverdue = "omni.journey.step_overdue",
    JourneyEscalated = "omni.journey.escalated",
    TemplateCreated = "omni.template.created",
    TemplateUpdated = "omni.template.updated",
    ApprovalRequested = "omni.approval.requested",
    ApprovalUnassignable = "omni.approval.unassignable",
    ApprovalApproverAssigned = "omni.approval.approver_assigned",
    ApprovalDecisionRecorded = "omni.approval.decision_recorded",
    ApprovalApproved = "omni.approval.approved",
    ApprovalRejected = "omni.approval.rejected",
    ApprovalExpired = "omni.approval.expired",
    ApprovalReminder = "omni.approval.reminder",
    DelegationGranted = "omni.delegation.granted",
    DelegationRevoked = "omni.delegation.revoked",
    SessionStarted = "omni.session.started",
    SessionEnded = "omni.session.ended",
    SessionHandoffCreated = "omni.session.handoff_created",
    SessionResumed = "omni.session.resumed",
    OnboardingStarted = "omni.onboarding.started",
    OnboardingDataAdded = "omni.onboarding.data_added",
    OnboardingDocumentAdded = "omni.onboarding.document_added",
    OnboardingFinished = "omni.onboarding.finished",
    OnboardingHandoffCreated = "omni.onboarding.handoff_created",
    OnboardingResumed = "omni.onboarding.resumed",
    NotificationCreated = "omni.notification.created",
    NotificationSent = "omni.notification.sent",
    NotificationDelivered = "omni.notification.delivered",
    NotificationFailed = "omni.notification.failed",
    NotificationRead = "omni.notification.read",
    NotificationCancelled = "omni.notification.cancelled",
    WebhookEndpointDisabled = "omni.webhook.endpoint_disabled",
    ApiKeyCreated = "omni.api_key.created",
    ApiKeyRevoked = "omni.api_key.revoked",
    CustomerErased = "omni.customer.erased",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_read_back() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(t.as_str().starts_with("omni."), "{t}");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert_eq!(EventType::parse("omni.journeyx.created"), None);
    }

    #[test]
    fn the_catalogue_is_the_one_docs_give_integrators() {
        let docs = include_str!("../../docs/api.md");
        for t in EventType::ALL {
            assert!(
                docs.contains(&format!("`{t}`")),
                "{t} is not in docs/api.md"
            );
        }
    }
}
