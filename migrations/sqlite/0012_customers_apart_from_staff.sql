-- Customers and staff are apart (issue 20): an approval opened by a customer's own action
-- (an onboarding step) names the customer as its requester, as a customer, and no longer
-- makes the customer a user of the staff directory.
ALTER TABLE approvals ADD COLUMN requested_by_type TEXT NOT NULL DEFAULT 'user';

UPDATE approvals SET requested_by_type = 'system' WHERE requested_by = 'omnirail';

UPDATE approvals SET requested_by_type = 'customer'
WHERE entity_type = 'journey' AND EXISTS (
    SELECT 1 FROM journeys j
    WHERE j.tenant_id = approvals.tenant_id AND j.id = approvals.entity_id
      AND j.customer_id = approvals.requested_by
);

-- The directory entries such approvals invented: a user named like one of the tenant's
-- customers, with no name, role or team, that no staff action made.
DELETE FROM users
WHERE name IS NULL
  AND EXISTS (SELECT 1 FROM customers c WHERE c.tenant_id = users.tenant_id AND c.id = users.id)
  AND NOT EXISTS (SELECT 1 FROM user_roles r WHERE r.tenant_id = users.tenant_id AND r.user_id = users.id)
  AND NOT EXISTS (SELECT 1 FROM team_members m WHERE m.tenant_id = users.tenant_id AND m.user_id = users.id);
