-- Deadlines that act (issue 25).
--
-- A template version carries the SLA its journeys run under; a change of `sla_hours` makes a
-- new version, as a change of steps does. Versions written before this migration take their
-- template's current value.
ALTER TABLE journey_template_versions ADD COLUMN sla_hours BIGINT;
UPDATE journey_template_versions v SET sla_hours = t.sla_hours
FROM journey_templates t WHERE t.tenant_id = v.tenant_id AND t.id = v.template_id;

-- A journey's deadlines, computed on every change that moves them (in the tenant's business
-- calendar, if it has one) and read by the deadline worker through `next_deadline_at`.
--   step_started_at     when the current step became current
--   sla_due_at          dueAt, else the start plus the version's slaHours
--   sla_at_risk_at      when the at-risk share of the time to sla_due_at has passed
--   step_due_at         step_started_at plus the current step's timeoutHours
--   *_fired             the deadline each event was last recorded for: once per deadline
--   next_deadline_at    the earliest deadline not yet fired; NULL when none is pending
ALTER TABLE journeys ADD COLUMN step_started_at BIGINT;
ALTER TABLE journeys ADD COLUMN sla_due_at BIGINT;
ALTER TABLE journeys ADD COLUMN sla_at_risk_at BIGINT;
ALTER TABLE journeys ADD COLUMN step_due_at BIGINT;
ALTER TABLE journeys ADD COLUMN at_risk_fired BIGINT;
ALTER TABLE journeys ADD COLUMN breach_fired BIGINT;
ALTER TABLE journeys ADD COLUMN step_overdue_fired BIGINT;
ALTER TABLE journeys ADD COLUMN next_deadline_at BIGINT;

UPDATE journeys j SET step_started_at = COALESCE(
    (SELECT MAX(h.occurred_at) FROM journey_step_history h
     WHERE h.journey_id = j.id AND h.outcome IN ('passed', 'skipped')),
    j.created_at);
UPDATE journeys j SET sla_due_at = COALESCE(j.due_at, (
    SELECT j.created_at + v.sla_hours * 3600000 FROM journey_template_versions v
    WHERE v.tenant_id = j.tenant_id AND v.template_id = j.template_id
      AND v.version = j.template_version));
UPDATE journeys SET sla_at_risk_at = CASE
    WHEN sla_due_at <= created_at THEN sla_due_at
    ELSE created_at + (sla_due_at - created_at) * 80 / 100 END
WHERE sla_due_at IS NOT NULL;
UPDATE journeys j SET step_due_at = j.step_started_at + 3600000 * (
    SELECT (CAST(v.steps AS jsonb) -> CAST(j.current_step_index AS INTEGER) ->> 'timeoutHours')::BIGINT
    FROM journey_template_versions v
    WHERE v.tenant_id = j.tenant_id AND v.template_id = j.template_id
      AND v.version = j.template_version)
WHERE j.status NOT IN ('completed', 'cancelled');

-- Deadlines already past when this runs are not announced now: they read as breached or
-- overdue, but no late burst of events follows an upgrade.
UPDATE journeys SET
    at_risk_fired = CASE WHEN sla_at_risk_at <= (extract(epoch from now()) * 1000)::BIGINT
                         THEN sla_at_risk_at END,
    breach_fired = CASE WHEN sla_due_at <= (extract(epoch from now()) * 1000)::BIGINT
                        THEN sla_due_at END,
    step_overdue_fired = CASE WHEN step_due_at <= (extract(epoch from now()) * 1000)::BIGINT
                              THEN step_due_at END;
UPDATE journeys SET next_deadline_at = LEAST(
    CASE WHEN at_risk_fired IS NULL THEN sla_at_risk_at END,
    CASE WHEN breach_fired IS NULL THEN sla_due_at END,
    CASE WHEN step_overdue_fired IS NULL THEN step_due_at END)
WHERE status NOT IN ('completed', 'cancelled');
CREATE INDEX journeys_next_deadline ON journeys(next_deadline_at)
    WHERE next_deadline_at IS NOT NULL;

-- An open request's reminder, once: when it was recorded.
ALTER TABLE approvals ADD COLUMN reminded_at BIGINT;

-- A tenant's SLA policy; a tenant without a row has the defaults (docs/sla.md).
CREATE TABLE sla_policies (
    tenant_id               TEXT PRIMARY KEY REFERENCES tenants(id),
    at_risk_percent         BIGINT NOT NULL,
    approval_reminder_hours BIGINT NOT NULL,
    calendar                TEXT,
    escalations             TEXT NOT NULL,
    updated_at              BIGINT NOT NULL
);

-- SLA analytics (GET /analytics/sla), kept by the fold worker, never by the write path: each
-- journey is folded in twice, its start once it exists (sla_folded 1) and its end once it is
-- completed or cancelled (sla_folded 2). Figures are kept per day, per week (from Monday) and
-- per month (period_start: the first day, days since 1970-01-01, UTC), so that a report reads
-- one row per period and group whatever its length. template_id '*' and team_id '*' hold the
-- totals over templates and teams; a journey's teams are its assigned team, or the teams of its
-- assigned user, or '' (none).
ALTER TABLE journeys ADD COLUMN sla_folded BIGINT NOT NULL DEFAULT 0;
CREATE INDEX journeys_unfolded ON journeys(updated_at)
    WHERE (sla_folded = 0 OR (sla_folded = 1 AND status IN ('completed', 'cancelled')));
-- Open journeys by their SLA, for the counts of those at risk and breached now.
CREATE INDEX journeys_open_sla ON journeys(tenant_id, sla_at_risk_at, sla_due_at, template_id,
    assignee_type, assignee_id)
    WHERE status IN ('created', 'in_progress', 'assigned') AND sla_at_risk_at IS NOT NULL;

CREATE TABLE sla_figures (
    tenant_id     TEXT NOT NULL,
    period        TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    template_id   TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    started       BIGINT NOT NULL,
    completed     BIGINT NOT NULL,
    met           BIGINT NOT NULL,
    breached      BIGINT NOT NULL,
    cancelled     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period, period_start, template_id, team_id)
);

-- Completed journeys by time to complete: bucket b holds durations from 1.1^b to 1.1^(b+1)
-- seconds (b = 0 also holds anything under a second).
CREATE TABLE sla_durations (
    tenant_id     TEXT NOT NULL,
    period        TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    template_id   TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    bucket        BIGINT NOT NULL,
    journeys      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period, period_start, template_id, team_id, bucket)
);
