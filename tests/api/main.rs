//! Black-box tests over HTTP against a real server on a random port. Each test has its own
//! database: SQLite by default, PostgreSQL when `OMNIRAIL_TEST_DATABASE_URL` is set.

mod analytics;
mod approvals;
mod channels;
mod cli;
mod console;
mod crash;
mod customers;
mod delegations;
mod directory;
mod errors;
mod helpers;
mod hygiene;
mod identity;
mod journeys;
mod keys;
mod limits;
mod money;
mod notifications;
mod oidc;
mod onboarding;
mod openapi;
mod plumbing;
mod providers;
mod retention;
mod secrets;
mod security;
mod sessions;
mod sla;
mod streams;
mod strict;
mod telemetry;
mod templates;
mod tenancy;
mod timeline;
mod webhooks;
