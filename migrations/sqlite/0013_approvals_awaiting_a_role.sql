-- A customer's own step never fails for the bank's set-up (issue 20): an approval step whose
-- role nobody holds opens its request with no approver, waiting for that role; the first user
-- given the role becomes its approver.
ALTER TABLE approvals ADD COLUMN awaiting_role TEXT;
CREATE INDEX approvals_awaiting_role ON approvals(tenant_id, awaiting_role)
    WHERE awaiting_role IS NOT NULL;
