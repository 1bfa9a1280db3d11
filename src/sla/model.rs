//! The rules of deadlines, as plain functions over plain values.
//!
//! - A journey is due at its `dueAt`, else at its start plus its template version's
//!   `slaHours`; it is at risk once `atRiskPercent` of the time from its start to that due time
//!   has passed. A step is due `timeoutHours` after it became current.
//! - With a business calendar, hours count only working time, and the at-risk share is a share
//!   of the working time. An explicit `dueAt` is an instant and is never moved by the calendar.
//! - Each deadline is announced once: the journey keeps, per kind, the deadline its event was
//!   recorded for, so a moved deadline is a new one and is announced again.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{Calendar, CalendarDef};
use crate::error::FieldError;
use crate::ids::{ID_RULE, is_external_id};
use crate::time::later;

const HOUR_MS: i64 = 3_600_000;

string_enum!(
    /// What a deadline's passing is: the journey's at-risk point, its SLA, or its current
    /// step's timeout.
    Trigger { AtRisk = "at_risk", Breached = "breached", StepOverdue = "step_overdue" }
);

string_enum!(
    /// Whom an escalation notifies: the journey's assignee (the user, or every member of the
    /// team) or the assignee's managers (members of the assignee's team, or of the assigned
    /// user's teams, who hold the role `manager`).
    NotifyParty { Assignee = "assignee", Manager = "manager" }
);

string_enum!(
    /// A priority an escalation raises a journey to (never lowers it).
    RaiseTo { Normal = "normal", High = "high", Urgent = "urgent" }
);

string_enum!(
    /// Where a journey stands against its SLA.
    SlaStatus {
        OnTrack = "on_track",
        AtRisk = "at_risk",
        Breached = "breached",
        Met = "met",
        None = "none",
    }
);

impl RaiseTo {
    /// The rank of a journey priority (`low` < `normal` < `high` < `urgent`).
    pub fn rank(priority: &str) -> u8 {
        match priority {
            "low" => 0,
            "normal" => 1,
            "high" => 2,
            _ => 3,
        }
    }
}

/// Who an escalation hands the journey to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reassign {
    /// `user` or `team`.
    #[schema(example = "team")]
    pub assignee_type: String,
    #[schema(example = "team_sme_credit")]
    pub assignee_id: String,
}

/// What happens when a deadline of a journey passes. Rules naming a template replace, for
/// that template and trigger, the rules naming none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Escalation {
    pub on: Trigger,
    /// Only journeys of this template; absent: every template without its own rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "tmpl_onboarding_sme")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyParty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassign_to: Option<Reassign>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raise_priority_to: Option<RaiseTo>,
}

/// A tenant's SLA policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The share of the time to the due time after which a journey is at risk (1 to 99).
    pub at_risk_percent: i64,
    /// How long before an approval request expires its approvers are reminded; 0: never.
    pub approval_reminder_hours: i64,
    pub calendar: Option<(CalendarDef, Calendar)>,
    pub escalations: Vec<Escalation>,
}

impl Default for Policy {
    /// Wall-clock time, at risk at 80%, approvers reminded a day before expiry, the assignee
    /// told at risk and the managers told at breach.
    fn default() -> Self {
        Self {
            at_risk_percent: 80,
            approval_reminder_hours: 24,
            calendar: None,
            escalations: vec![
                Escalation {
                    on: Trigger::AtRisk,
                    template_id: None,
                    notify: vec![NotifyParty::Assignee],
                    reassign_to: None,
                    raise_priority_to: None,
                },
                Escalation {
                    on: Trigger::Breached,
                    template_id: None,
                    notify: vec![NotifyParty::Manager],
                    reassign_to: None,
                    raise_priority_to: None,
                },
            ],
        }
    }
}

/// Checks a policy's parts; one error per offending field.
pub fn check(
    at_risk_percent: i64,
    approval_reminder_hours: i64,
    escalations: &[Escalation],
    errors: &mut Vec<FieldError>,
) {
    if !(1..=99).contains(&at_risk_percent) {
        errors.push(FieldError::new(
            "atRiskPercent",
            "must be a whole number from 1 to 99",
        ));
    }
    if !(0..=720).contains(&approval_reminder_hours) {
        errors.push(FieldError::new(
            "approvalReminderHours",
            "must be a whole number from 0 (no reminder) to 720",
        ));
    }
    if escalations.len() > 100 {
        errors.push(FieldError::new(
            "escalations",
            "must hold at most 100 rules",
        ));
    }
    for (i, e) in escalations.iter().enumerate() {
        let at = |f: &str| format!("escalations[{i}].{f}");
        if let Some(t) = &e.template_id
            && !crate::ids::is_template_id(t)
        {
            errors.push(FieldError::new(
                at("templateId"),
                "must be a template id (tmpl_ followed by a-z, 0-9, _)",
            ));
        }
        if e.notify.is_empty() && e.reassign_to.is_none() && e.raise_priority_to.is_none() {
            errors.push(FieldError::new(
                at("notify"),
                "a rule must notify, reassign or raise the priority",
            ));
        }
        for (j, p) in e.notify.iter().enumerate() {
            if e.notify[..j].contains(p) {
                errors.push(FieldError::new(
                    format!("escalations[{i}].notify[{j}]"),
                    "names a party twice",
                ));
            }
        }
        if let Some(r) = &e.reassign_to {
            if !matches!(r.assignee_type.as_str(), "user" | "team") {
                errors.push(FieldError::new(
                    at("reassignTo.assigneeType"),
                    "must be user or team",
                ));
            }
            if !is_external_id(&r.assignee_id) {
                errors.push(FieldError::new(at("reassignTo.assigneeId"), ID_RULE));
            }
        }
        if escalations[..i]
            .iter()
            .any(|o| o.on == e.on && o.template_id == e.template_id)
        {
            errors.push(FieldError::new(
                at("on"),
                "another rule has this trigger and template; combine them",
            ));
        }
    }
}

impl Policy {
    fn calendar(&self) -> Option<&Calendar> {
        self.calendar.as_ref().map(|(_, c)| c)
    }

    /// `hours` after `from`: working hours with a calendar, else wall-clock hours.
    pub fn after(&self, from: i64, hours: i64) -> i64 {
        let ms = hours.saturating_mul(HOUR_MS);
        match self.calendar() {
            Some(c) => c.add(from, ms),
            None => later(from, std::time::Duration::from_millis(ms.unsigned_abs())),
        }
    }

    /// When a journey started at `start` and due at `due` turns at risk.
    pub fn at_risk_at(&self, start: i64, due: i64) -> i64 {
        if due <= start {
            return due;
        }
        match self.calendar() {
            Some(c) => {
                let working = c.between(start, due);
                c.add(start, working * self.at_risk_percent / 100).min(due)
            }
            None => {
                start + ((i128::from(due - start) * i128::from(self.at_risk_percent)) / 100) as i64
            }
        }
    }

    /// A journey's SLA: `(due, at risk)`, from its explicit `due_at` or its version's hours.
    pub fn sla(
        &self,
        start: i64,
        due_at: Option<i64>,
        sla_hours: Option<i64>,
    ) -> Option<(i64, i64)> {
        let due = due_at.or_else(|| sla_hours.map(|h| self.after(start, h)))?;
        Some((due, self.at_risk_at(start, due)))
    }

    /// The escalation rules for `trigger` on a journey of `template`: the template's own if it
    /// has any for the trigger, else the tenant's.
    pub fn escalations_for(&self, trigger: Trigger, template: &str) -> Vec<&Escalation> {
        let own: Vec<&Escalation> = self
            .escalations
            .iter()
            .filter(|e| e.on == trigger && e.template_id.as_deref() == Some(template))
            .collect();
        if !own.is_empty() {
            return own;
        }
        self.escalations
            .iter()
            .filter(|e| e.on == trigger && e.template_id.is_none())
            .collect()
    }
}

/// Where a journey stands against its SLA at `now`. `ended_at` is when it was completed or
/// cancelled (`None` while open). A cancelled journey has no SLA outcome unless it was
/// cancelled after its due time.
pub fn status(
    due: Option<i64>,
    at_risk: Option<i64>,
    completed: bool,
    ended_at: Option<i64>,
    now: i64,
) -> SlaStatus {
    let Some(due) = due else {
        return SlaStatus::None;
    };
    match ended_at {
        Some(end) if end > due => SlaStatus::Breached,
        Some(_) if completed => SlaStatus::Met,
        Some(_) => SlaStatus::None,
        None if now >= due => SlaStatus::Breached,
        None if at_risk.is_some_and(|r| now >= r) => SlaStatus::AtRisk,
        None => SlaStatus::OnTrack,
    }
}

/// The earliest of `deadlines` (each with the deadline its event was recorded for) not yet
/// announced; `None` when all are.
pub fn next_deadline(deadlines: &[(Option<i64>, Option<i64>)]) -> Option<i64> {
    deadlines
        .iter()
        .filter_map(|(at, fired)| at.filter(|a| Some(*a) != *fired))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::calendar::WorkingHours;
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn the_sla_runs_from_the_start_and_turns_at_risk_at_the_share() {
        let p = Policy::default();
        let start = t("2026-01-05T09:00:00Z");
        let (due, risk) = p.sla(start, None, Some(100)).unwrap();
        assert_eq!(due, start + 100 * HOUR_MS);
        assert_eq!(risk, start + 80 * HOUR_MS);
        // An explicit due time wins over the template's hours.
        let explicit = t("2026-01-06T09:00:00Z");
        assert_eq!(p.sla(start, Some(explicit), Some(100)).unwrap().0, explicit);
        assert_eq!(p.sla(start, None, None), None);
        // Due already at its start: at risk and due at once.
        assert_eq!(p.at_risk_at(start, start - 1), start - 1);
    }

    #[test]
    fn with_a_calendar_hours_and_the_share_are_working_time() {
        let def = CalendarDef {
            time_zone: "UTC".into(),
            working_hours: vec![WorkingHours {
                days: ["mon", "tue", "wed", "thu", "fri"]
                    .map(String::from)
                    .to_vec(),
                start: "09:00".into(),
                end: "17:00".into(),
            }],
            holidays: vec![],
        };
        let cal = def.check("calendar", &mut vec![]).unwrap();
        let p = Policy {
            at_risk_percent: 50,
            calendar: Some((def, cal)),
            ..Policy::default()
        };
        // Friday 13:00: 4 hours that day, then Monday.
        let start = t("2026-01-09T13:00:00Z");
        let (due, risk) = p.sla(start, None, Some(10)).unwrap();
        assert_eq!(due, t("2026-01-12T15:00:00Z"));
        assert_eq!(risk, t("2026-01-12T10:00:00Z"));
    }

    #[test]
    fn status_reads_the_clock_and_the_end() {
        let (due, risk) = (Some(100), Some(80));
        assert_eq!(status(due, risk, false, None, 10), SlaStatus::OnTrack);
        assert_eq!(status(due, risk, false, None, 80), SlaStatus::AtRisk);
        assert_eq!(status(due, risk, false, None, 100), SlaStatus::Breached);
        assert_eq!(status(due, risk, true, Some(90), 500), SlaStatus::Met);
        assert_eq!(status(due, risk, true, Some(101), 500), SlaStatus::Breached);
        assert_eq!(status(due, risk, false, Some(90), 500), SlaStatus::None);
        assert_eq!(status(None, None, false, None, 500), SlaStatus::None);
    }

    #[test]
    fn the_next_deadline_is_the_earliest_not_announced() {
        assert_eq!(
            next_deadline(&[
                (Some(80), Some(80)),
                (Some(100), None),
                (Some(90), Some(70))
            ]),
            Some(90)
        );
        assert_eq!(next_deadline(&[(Some(80), Some(80)), (None, None)]), None);
    }

    #[test]
    fn a_templates_own_rules_replace_the_tenants() {
        let mut p = Policy::default();
        p.escalations.push(Escalation {
            on: Trigger::Breached,
            template_id: Some("tmpl_a".into()),
            notify: vec![],
            reassign_to: None,
            raise_priority_to: Some(RaiseTo::Urgent),
        });
        let a = p.escalations_for(Trigger::Breached, "tmpl_a");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].raise_priority_to, Some(RaiseTo::Urgent));
        let b = p.escalations_for(Trigger::Breached, "tmpl_b");
        assert_eq!(b[0].notify, vec![NotifyParty::Manager]);
        assert!(p.escalations_for(Trigger::StepOverdue, "tmpl_a").is_empty());
    }

    #[test]
    fn policy_checks_name_each_field() {
        let bad = vec![
            Escalation {
                on: Trigger::AtRisk,
                template_id: Some("onboarding".into()),
                notify: vec![],
                reassign_to: None,
                raise_priority_to: None,
            },
            Escalation {
                on: Trigger::Breached,
                template_id: None,
                notify: vec![NotifyParty::Manager, NotifyParty::Manager],
                reassign_to: Some(Reassign {
                    assignee_type: "robot".into(),
                    assignee_id: "x y".into(),
                }),
                raise_priority_to: None,
            },
        ];
        let mut errors = vec![];
        check(0, 721, &bad, &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "atRiskPercent",
                "approvalReminderHours",
                "escalations[0].templateId",
                "escalations[0].notify",
                "escalations[1].notify[1]",
                "escalations[1].reassignTo.assigneeType",
                "escalations[1].reassignTo.assigneeId",
            ]
        );
    }
}
