-- Deadlines that act (issue 25).
--
-- A template version carries the SLA its journeys run under; a change of `sla_hours` makes a
-- new version, as a change of steps does. Versions written before this migration take their
-- template's current value.
ALTER TABLE journey_template_versions ADD COLUMN sla_hours INTEGER;
UPDATE journey_template_versions SET sla_hours = (
    SELECT t.sla_hours FROM journey_templates t
    WHERE t.tenant_id = journey_template_versions.tenant_id
      AND t.id = journey_template_versions.template_id);

-- A journey's deadlines, computed on every change that moves them (in the tenant's business
-- calendar, if it has one) and read by the deadline worker through `next_deadline_at`.
--   step_started_at     when the current step became current
--   sla_due_at          dueAt, else the start plus the version's slaHours
--   sla_at_risk_at      when the at-risk share of the time to sla_due_at has passed
--   step_due_at         step_started_at plus the current step's timeoutHours
--   *_fired             the deadline each event was last recorded for: once per deadline
--   next_deadline_at    the earliest deadline not yet fired; NULL when none is pending
ALTER TABLE journeys ADD COLUMN step_started_at INTEGER;
ALTER TABLE journeys ADD COLUMN sla_due_at INTEGER;
ALTER TABLE journeys ADD COLUMN sla_at_risk_at INTEGER;
ALTER TABLE journeys ADD COLUMN step_due_at INTEGER;
ALTER TABLE journeys ADD COLUMN at_risk_fired INTEGER;
ALTER TABLE journeys ADD COLUMN breach_fired INTEGER;
ALTER TABLE journeys ADD COLUMN step_overdue_fired INTEGER;
ALTER TABLE journeys ADD COLUMN next_deadline_at INTEGER;

UPDATE journeys SET step_started_at = COALESCE(
    (SELECT MAX(h.occurred_at) FROM journey_step_history h
     WHERE h.journey_id = journeys.id AND h.outcome IN ('passed', 'skipped')),
    created_at);
UPDATE journeys SET sla_due_at = COALESCE(due_at, (
    SELECT journeys.created_at + v.sla_hours * 3600000 FROM journey_template_versions v
    WHERE v.tenant_id = journeys.tenant_id AND v.template_id = journeys.template_id
      AND v.version = journeys.template_version));
UPDATE journeys SET sla_at_risk_at = CASE
    WHEN sla_due_at <= created_at THEN sla_due_at
    ELSE created_at + (sla_due_at - created_at) * 80 / 100 END
WHERE sla_due_at IS NOT NULL;
UPDATE journeys SET step_due_at = step_started_at + 3600000 * (
    SELECT json_extract(v.steps, '$[' || journeys.current_step_index || '].timeoutHours')
    FROM journey_template_versions v
    WHERE v.tenant_id = journeys.tenant_id AND v.template_id = journeys.template_id
      AND v.version = journeys.template_version)
WHERE status NOT IN ('completed', 'cancelled');

-- Deadlines already past when this runs are not announced now: they read as breached or
-- overdue, but no late burst of events follows an upgrade.
UPDATE journeys SET
    at_risk_fired = CASE WHEN sla_at_risk_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000
                         THEN sla_at_risk_at END,
    breach_fired = CASE WHEN sla_due_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000
                        THEN sla_due_at END,
    step_overdue_fired = CASE WHEN step_due_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000
                              THEN step_due_at END;
UPDATE journeys SET next_deadline_at = NULLIF(MIN(
    CASE WHEN at_risk_fired IS NULL THEN COALESCE(sla_at_risk_at, 9223372036854775807)
         ELSE 9223372036854775807 END,
    CASE WHEN breach_fired IS NULL THEN COALESCE(sla_due_at, 9223372036854775807)
         ELSE 9223372036854775807 END,
    CASE WHEN step_overdue_fired IS NULL THEN COALESCE(step_due_at, 9223372036854775807)
         ELSE 9223372036854775807 END), 9223372036854775807)
WHERE status NOT IN ('completed', 'cancelled');
CREATE INDEX journeys_next_deadline ON journeys(next_deadline_at)
    WHERE next_deadline_at IS NOT NULL;

-- An open request's reminder, once: when it was recorded.
ALTER TABLE approvals ADD COLUMN reminded_at INTEGER;

-- A tenant's SLA policy; a tenant without a row has the defaults (docs/sla.md).
CREATE TABLE sla_policies (
    tenant_id               TEXT PRIMARY KEY REFERENCES tenants(id),
    at_risk_percent         INTEGER NOT NULL,
    approval_reminder_hours INTEGER NOT NULL,
    calendar                TEXT,
    escalations             TEXT NOT NULL,
    updated_at              INTEGER NOT NULL
);

-- SLA analytics (GET /analytics/sla), kept by the fold worker, never by the write path: each
-- journey is folded in twice, its start once it exists (sla_folded 1) and its end once it is
-- completed or cancelled (sla_folded 2). Figures are kept per day, per week (from Monday) and
-- per month (period_start: the first day, days since 1970-01-01, UTC), so that a report reads
-- one row per period and group whatever its length. template_id '*' and team_id '*' hold the
-- totals over templates and teams; a journey's teams are its assigned team, or the teams of its
-- assigned user, or '' (none).
ALTER TABLE journeys ADD COLUMN sla_folded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX journeys_unfolded ON journeys(updated_at)
    WHERE (sla_folded = 0 OR (sla_folded = 1 AND status IN ('completed', 'cancelled')));
-- Open journeys by their SLA, for the counts of those at risk and breached now.
CREATE INDEX journeys_open_sla ON journeys(tenant_id, sla_at_risk_at, sla_due_at, template_id,
    assignee_type, assignee_id)
    WHERE status IN ('created', 'in_progress', 'assigned') AND sla_at_risk_at IS NOT NULL;

CREATE TABLE sla_figures (
    tenant_id     TEXT NOT NULL,
    period        TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    template_id   TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    started       INTEGER NOT NULL,
    completed     INTEGER NOT NULL,
    met           INTEGER NOT NULL,
    breached      INTEGER NOT NULL,
    cancelled     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, period, period_start, template_id, team_id)
) WITHOUT ROWID;

-- Completed journeys by time to complete: bucket b holds durations from 1.1^b to 1.1^(b+1)
-- seconds (b = 0 also holds anything under a second).
CREATE TABLE sla_durations (
    tenant_id     TEXT NOT NULL,
    period        TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    template_id   TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    bucket        INTEGER NOT NULL,
    journeys      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, period, period_start, template_id, team_id, bucket)
) WITHOUT ROWID;
