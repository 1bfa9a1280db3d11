//! The rules of delegations of authority and approvals, as plain functions over plain values.
//!
//! Delegations: a status derived from the clock and revocation at every read
//! (`scheduled` → `active` → `expired`, or `revoked` at any time). A deputy holds the authority
//! of a delegation only while it is `active`, only for its scopes (`all` covers every scope),
//! and, for approvals, only up to its `maxApprovalAmount` in the same currency.
//!
//! Approvals (DESIGN.md):
//!
//! ```text
//! requested ──every required approver approves──▶ approved
//!     │  └────a required approver rejects─────────▶ rejected
//!     │        (none required: the first decision decides)
//!     └──────past expiresAt──────────────────────▶ expired
//! ```
//!
//! - maker-checker: the requester never decides, directly or as anyone's deputy;
//! - one decision per approver slot; a deputy fills the slot of the approver who delegated;
//! - nothing leaves `approved`, `rejected` or `expired`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::money::Money;

string_enum!(
    /// What a delegation hands over. `all` covers the others.
    Scope { Approvals = "approvals", JourneyAssign = "journey_assign", All = "all" }
);

string_enum!(
    /// Derived at every read from the clock and revocation.
    DelegationStatus {
        Scheduled = "scheduled",
        Active = "active",
        Expired = "expired",
        Revoked = "revoked",
    }
);

string_enum!(
    /// Where an approval request is.
    ApprovalStatus {
        Requested = "requested",
        Approved = "approved",
        Rejected = "rejected",
        Expired = "expired",
    }
);

string_enum!(
    /// Who asked for an approval: a staff `user` (through the API), the `customer` of the
    /// journey (whose own step in an onboarding opened it), or the `system` (a step reached
    /// with no one named). Only a `user` is in the staff directory.
    RequesterType { User = "user", Customer = "customer", System = "system" }
);

string_enum!(
    /// An approver's answer.
    Decision { Approve = "approve", Reject = "reject" }
);

impl Scope {
    /// Whether holding `self` gives `need`.
    pub fn covers(self, need: Scope) -> bool {
        self == Scope::All || self == need
    }

    /// Whether two scopes hand over some authority in common.
    pub fn overlaps(self, other: Scope) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl ApprovalStatus {
    pub fn is_final(self) -> bool {
        self != ApprovalStatus::Requested
    }
}

/// A delegation as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: String,
    pub scopes: Vec<Scope>,
    pub max_amount: Option<Money>,
    /// Inclusive bounds, in ms.
    pub valid_from: i64,
    pub valid_to: i64,
    pub revoked_at: Option<i64>,
}

impl Grant {
    pub fn status(&self, now: i64) -> DelegationStatus {
        delegation_status(self.valid_from, self.valid_to, self.revoked_at, now)
    }
}

pub fn delegation_status(
    valid_from: i64,
    valid_to: i64,
    revoked_at: Option<i64>,
    now: i64,
) -> DelegationStatus {
    if revoked_at.is_some() {
        DelegationStatus::Revoked
    } else if now < valid_from {
        DelegationStatus::Scheduled
    } else if now > valid_to {
        DelegationStatus::Expired
    } else {
        DelegationStatus::Active
    }
}

/// Why a deputy does not hold the authority it claims. The checks look first at what the
/// delegation hands over (scope, currency, limit) and then at when (revocation, validity), so
/// among several delegations the one that would have given the authority is the one reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAuthority {
    NoDelegation,
    Revoked,
    NotYetActive,
    Expired,
    OutOfScope,
    CurrencyMismatch { limit: Money },
    OverLimit { limit: Money },
}

impl NoAuthority {
    /// The stable `code` of the 403 answer.
    pub fn code(&self) -> &'static str {
        match self {
            NoAuthority::NoDelegation => "no_delegation",
            NoAuthority::Revoked => "delegation_revoked",
            NoAuthority::NotYetActive => "delegation_not_yet_active",
            NoAuthority::Expired => "delegation_expired",
            NoAuthority::OutOfScope => "delegation_scope_excluded",
            NoAuthority::CurrencyMismatch { .. } => "delegation_currency_mismatch",
            NoAuthority::OverLimit { .. } => "delegation_limit_exceeded",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            NoAuthority::NoDelegation => {
                "No delegation to this user from the one whose authority it needs".into()
            }
            NoAuthority::Revoked => "The delegation was revoked".into(),
            NoAuthority::NotYetActive => {
                "The delegation is not yet valid (before validFrom)".into()
            }
            NoAuthority::Expired => "The delegation has expired (after validTo)".into(),
            NoAuthority::OutOfScope => "The delegation's scope does not cover this action".into(),
            NoAuthority::CurrencyMismatch { limit } => format!(
                "The delegation's limit is in {}, the amount under approval is not",
                limit.currency
            ),
            NoAuthority::OverLimit { limit } => format!(
                "The amount under approval exceeds the delegation's limit of {} {}",
                limit.amount, limit.currency
            ),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            NoAuthority::NoDelegation => 0,
            NoAuthority::OutOfScope => 1,
            NoAuthority::CurrencyMismatch { .. } => 2,
            NoAuthority::OverLimit { .. } => 3,
            NoAuthority::NotYetActive | NoAuthority::Expired => 4,
            NoAuthority::Revoked => 5,
        }
    }
}

/// Whether `g` gives `need` at `now` for `amount` (the amount under approval, if any). A
/// delegation without `maxApprovalAmount` has no limit; an action without an amount is not
/// bounded by one.
pub fn grant_authorizes(
    g: &Grant,
    need: Scope,
    amount: Option<&Money>,
    now: i64,
) -> Result<(), NoAuthority> {
    if !g.scopes.iter().any(|s| s.covers(need)) {
        return Err(NoAuthority::OutOfScope);
    }
    if let (Some(limit), Some(amount)) = (&g.max_amount, amount) {
        if limit.currency != amount.currency {
            return Err(NoAuthority::CurrencyMismatch {
                limit: limit.clone(),
            });
        }
        if amount.amount > limit.amount {
            return Err(NoAuthority::OverLimit {
                limit: limit.clone(),
            });
        }
    }
    match g.status(now) {
        DelegationStatus::Revoked => Err(NoAuthority::Revoked),
        DelegationStatus::Scheduled => Err(NoAuthority::NotYetActive),
        DelegationStatus::Expired => Err(NoAuthority::Expired),
        DelegationStatus::Active => Ok(()),
    }
}

/// The first of `grants` (all from one delegator to one deputy) that gives `need`; otherwise
/// the refusal of the one that came closest (see [`NoAuthority`]).
pub fn authority<'a>(
    grants: &'a [Grant],
    need: Scope,
    amount: Option<&Money>,
    now: i64,
) -> Result<&'a Grant, NoAuthority> {
    let mut closest = NoAuthority::NoDelegation;
    for g in grants {
        match grant_authorizes(g, need, amount, now) {
            Ok(()) => return Ok(g),
            Err(why) if why.rank() > closest.rank() => closest = why,
            Err(_) => {}
        }
    }
    Err(closest)
}

/// Whether a new delegation of `scopes` over `[from, to]` would hand on authority its delegator
/// holds only by delegation: the delegator has no role of its own in the directory and holds,
/// at some instant of that period, a live delegation of an overlapping scope.
pub fn is_redelegation(
    delegator_has_own_role: bool,
    held: &[Grant],
    scopes: &[Scope],
    from: i64,
    to: i64,
    now: i64,
) -> bool {
    !delegator_has_own_role
        && held.iter().any(|g| {
            g.revoked_at.is_none()
                && g.valid_to >= now
                && g.valid_from <= to
                && from <= g.valid_to
                && g.scopes
                    .iter()
                    .any(|a| scopes.iter().any(|b| a.overlaps(*b)))
        })
}

/// Who may (re)assign a journey: its current assignee, a `manager`, or a deputy of the current
/// assignee under an active `journey_assign` (or `all`) delegation. A journey with no assignee
/// has nobody to delegate from, so only a manager may assign it.
pub fn may_assign(
    by: &str,
    current_assignee: Option<&str>,
    by_is_manager: bool,
    grants_from_assignee: &[Grant],
    now: i64,
) -> Result<(), NoAuthority> {
    match current_assignee {
        Some(current) if current == by => Ok(()),
        _ if by_is_manager => Ok(()),
        None => Err(NoAuthority::NoDelegation),
        Some(_) => authority(grants_from_assignee, Scope::JourneyAssign, None, now).map(|_| ()),
    }
}

/// One approver's place on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub user_id: String,
    pub required: bool,
    pub decision: Option<Decision>,
}

/// What the rules need of an approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalState {
    /// As stored: `requested` until a decision or the expiry sweep closes it.
    pub stored: ApprovalStatus,
    pub expires_at: Option<i64>,
    pub requested_by: String,
    pub slots: Vec<Slot>,
}

impl ApprovalState {
    /// The status a reader sees at `now`: a request past `expiresAt` is `expired` at once.
    pub fn status_at(&self, now: i64) -> ApprovalStatus {
        status_at(self.stored, self.expires_at, now)
    }
}

pub fn status_at(stored: ApprovalStatus, expires_at: Option<i64>, now: i64) -> ApprovalStatus {
    if stored == ApprovalStatus::Requested && expires_at.is_some_and(|e| now >= e) {
        ApprovalStatus::Expired
    } else {
        stored
    }
}

/// The status the decisions in `slots` give: with required approvers, approved when all of
/// them approve and rejected when any rejects; with none required, the first decision decides.
pub fn outcome(slots: &[Slot]) -> ApprovalStatus {
    let decided = |d| match d {
        Decision::Approve => ApprovalStatus::Approved,
        Decision::Reject => ApprovalStatus::Rejected,
    };
    let mut required = slots.iter().filter(|s| s.required).peekable();
    if required.peek().is_none() {
        return slots
            .iter()
            .find_map(|s| s.decision)
            .map_or(ApprovalStatus::Requested, decided);
    }
    let required: Vec<&Slot> = required.collect();
    if required
        .iter()
        .any(|s| s.decision == Some(Decision::Reject))
    {
        ApprovalStatus::Rejected
    } else if required
        .iter()
        .all(|s| s.decision == Some(Decision::Approve))
    {
        ApprovalStatus::Approved
    } else {
        ApprovalStatus::Requested
    }
}

/// A decision as submitted.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// Who decides.
    pub decider: &'a str,
    /// The approver whose slot the decider fills as deputy.
    pub on_behalf_of: Option<&'a str>,
    pub decision: Decision,
    pub now: i64,
}

impl Attempt<'_> {
    /// The approver whose slot this decision fills.
    pub fn slot_user(&self) -> &str {
        self.on_behalf_of.unwrap_or(self.decider)
    }

    /// Whether the decider acts for someone else.
    pub fn is_deputy(&self) -> bool {
        self.on_behalf_of.is_some_and(|o| o != self.decider)
    }
}

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is no longer `requested` (409).
    NotOpen(ApprovalStatus),
    /// The requester tried to decide (403).
    SelfDecision,
    /// The slot's user is not an approver of the request (403).
    NotAnApprover,
    /// The deputy lacks the authority (403).
    NoAuthority(NoAuthority),
    /// The slot already holds a decision (409).
    AlreadyDecided,
}

/// What an accepted decision changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// Index of the slot filled.
    pub slot: usize,
    /// The request's status after the decision.
    pub status: ApprovalStatus,
    /// The delegation a deputy acted under.
    pub delegation_id: Option<String>,
}

/// Checks `a` against the request and, for a deputy, against `grants` (the delegations from
/// the slot's approver to the deputy); `amount` is the amount under approval.
pub fn decide(
    state: &ApprovalState,
    a: &Attempt<'_>,
    grants: &[Grant],
    amount: Option<&Money>,
) -> Result<Decided, Refusal> {
    let status = state.status_at(a.now);
    if status.is_final() {
        return Err(Refusal::NotOpen(status));
    }
    if a.decider == state.requested_by || a.on_behalf_of == Some(state.requested_by.as_str()) {
        return Err(Refusal::SelfDecision);
    }
    let slot_user = a.slot_user();
    let Some(slot) = state.slots.iter().position(|s| s.user_id == slot_user) else {
        return Err(Refusal::NotAnApprover);
    };
    let delegation_id = if a.is_deputy() {
        let g = authority(grants, Scope::Approvals, amount, a.now).map_err(Refusal::NoAuthority)?;
        Some(g.id.clone())
    } else {
        None
    };
    if state.slots[slot].decision.is_some() {
        return Err(Refusal::AlreadyDecided);
    }
    let mut slots = state.slots.clone();
    slots[slot].decision = Some(a.decision);
    Ok(Decided {
        slot,
        status: outcome(&slots),
        delegation_id,
    })
}

/// The state after an accepted decision.
pub fn apply(state: &ApprovalState, decided: &Decided, decision: Decision) -> ApprovalState {
    let mut next = state.clone();
    next.slots[decided.slot].decision = Some(decision);
    next.stored = decided.status;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000;

    fn sar(amount: i64) -> Money {
        Money {
            amount: amount.into(),
            currency: "SAR".into(),
        }
    }

    fn grant(scopes: &[Scope], max: Option<Money>) -> Grant {
        Grant {
            id: "del_1".into(),
            scopes: scopes.to_vec(),
            max_amount: max,
            valid_from: 10 * DAY,
            valid_to: 20 * DAY,
            revoked_at: None,
        }
    }

    fn slot(user: &str, required: bool) -> Slot {
        Slot {
            user_id: user.into(),
            required,
            decision: None,
        }
    }

    fn request(slots: Vec<Slot>) -> ApprovalState {
        ApprovalState {
            stored: ApprovalStatus::Requested,
            expires_at: Some(30 * DAY),
            requested_by: "usr_rm".into(),
            slots,
        }
    }

    fn attempt<'a>(decider: &'a str, on_behalf_of: Option<&'a str>, d: Decision) -> Attempt<'a> {
        Attempt {
            decider,
            on_behalf_of,
            decision: d,
            now: 15 * DAY,
        }
    }

    #[test]
    fn delegation_status_follows_the_clock_and_revocation() {
        let mut g = grant(&[Scope::Approvals], None);
        assert_eq!(g.status(9 * DAY), DelegationStatus::Scheduled);
        assert_eq!(g.status(10 * DAY), DelegationStatus::Active);
        assert_eq!(g.status(20 * DAY), DelegationStatus::Active);
        assert_eq!(g.status(20 * DAY + 1), DelegationStatus::Expired);
        g.revoked_at = Some(12 * DAY);
        assert_eq!(g.status(11 * DAY), DelegationStatus::Revoked);
    }

    #[test]
    fn authority_checks_time_scope_currency_and_limit() {
        let now = 15 * DAY;
        let g = grant(&[Scope::Approvals], Some(sar(500_000)));
        let within = sar(500_000);
        assert!(grant_authorizes(&g, Scope::Approvals, Some(&within), now).is_ok());
        assert!(matches!(
            grant_authorizes(&g, Scope::Approvals, Some(&sar(500_001)), now),
            Err(NoAuthority::OverLimit { .. })
        ));
        let usd = Money {
            amount: 1.into(),
            currency: "USD".into(),
        };
        assert!(matches!(
            grant_authorizes(&g, Scope::Approvals, Some(&usd), now),
            Err(NoAuthority::CurrencyMismatch { .. })
        ));
        assert_eq!(
            grant_authorizes(&g, Scope::JourneyAssign, None, now),
            Err(NoAuthority::OutOfScope)
        );
        assert_eq!(
            grant_authorizes(&g, Scope::Approvals, None, 9 * DAY),
            Err(NoAuthority::NotYetActive)
        );
        assert_eq!(
            grant_authorizes(&g, Scope::Approvals, None, 21 * DAY),
            Err(NoAuthority::Expired)
        );
        let all = grant(&[Scope::All], None);
        assert!(grant_authorizes(&all, Scope::JourneyAssign, None, now).is_ok());
        assert!(grant_authorizes(&all, Scope::Approvals, Some(&sar(i64::MAX)), now).is_ok());
    }

    #[test]
    fn the_closest_refusal_is_reported() {
        let mut revoked = grant(&[Scope::Approvals], None);
        revoked.revoked_at = Some(11 * DAY);
        let small = grant(&[Scope::Approvals], Some(sar(10)));
        let narrow = grant(&[Scope::JourneyAssign], None);
        let err = authority(
            &[narrow.clone(), small.clone()],
            Scope::Approvals,
            Some(&sar(11)),
            15 * DAY,
        )
        .unwrap_err();
        assert!(matches!(err, NoAuthority::OverLimit { .. }));
        // The revoked one would have covered the amount: its revocation is what is reported.
        let err = authority(
            &[narrow, small, revoked.clone()],
            Scope::Approvals,
            Some(&sar(11)),
            15 * DAY,
        )
        .unwrap_err();
        assert_eq!(err, NoAuthority::Revoked);
        assert_eq!(
            authority(&[], Scope::Approvals, None, 0).unwrap_err(),
            NoAuthority::NoDelegation
        );
        assert_eq!(
            authority(&[revoked], Scope::Approvals, None, 15 * DAY).unwrap_err(),
            NoAuthority::Revoked
        );
    }

    #[test]
    fn all_required_must_approve_and_one_rejection_rejects() {
        let s = request(vec![slot("a", true), slot("b", true), slot("c", false)]);
        let d = decide(&s, &attempt("a", None, Decision::Approve), &[], None).unwrap();
        assert_eq!(d.status, ApprovalStatus::Requested);
        let s = apply(&s, &d, Decision::Approve);
        let d = decide(&s, &attempt("c", None, Decision::Reject), &[], None).unwrap();
        assert_eq!(d.status, ApprovalStatus::Requested, "c is not required");
        let s = apply(&s, &d, Decision::Reject);
        let d = decide(&s, &attempt("b", None, Decision::Approve), &[], None).unwrap();
        assert_eq!(d.status, ApprovalStatus::Approved);

        let s = request(vec![slot("a", true), slot("b", true)]);
        let d = decide(&s, &attempt("b", None, Decision::Reject), &[], None).unwrap();
        assert_eq!(d.status, ApprovalStatus::Rejected);
    }

    #[test]
    fn with_none_required_the_first_decision_decides() {
        let s = request(vec![slot("a", false), slot("b", false)]);
        let d = decide(&s, &attempt("b", None, Decision::Reject), &[], None).unwrap();
        assert_eq!(d.status, ApprovalStatus::Rejected);
        let s = apply(&s, &d, Decision::Reject);
        assert_eq!(
            decide(&s, &attempt("a", None, Decision::Approve), &[], None),
            Err(Refusal::NotOpen(ApprovalStatus::Rejected))
        );
    }

    #[test]
    fn maker_checker_and_slots() {
        let s = request(vec![slot("a", true), slot("usr_rm", true)]);
        let g = grant(&[Scope::All], None);
        assert_eq!(
            decide(&s, &attempt("usr_rm", None, Decision::Approve), &[], None),
            Err(Refusal::SelfDecision)
        );
        assert_eq!(
            decide(
                &s,
                &attempt("usr_rm", Some("a"), Decision::Approve),
                std::slice::from_ref(&g),
                None
            ),
            Err(Refusal::SelfDecision)
        );
        assert_eq!(
            decide(
                &s,
                &attempt("x", Some("usr_rm"), Decision::Approve),
                &[g],
                None
            ),
            Err(Refusal::SelfDecision)
        );
        assert_eq!(
            decide(&s, &attempt("z", None, Decision::Approve), &[], None),
            Err(Refusal::NotAnApprover)
        );
        let d = decide(&s, &attempt("a", None, Decision::Approve), &[], None).unwrap();
        let s = apply(&s, &d, Decision::Approve);
        assert_eq!(
            decide(&s, &attempt("a", Some("a"), Decision::Reject), &[], None),
            Err(Refusal::AlreadyDecided)
        );
    }

    #[test]
    fn a_deputy_fills_the_approvers_slot_within_its_delegation() {
        let s = request(vec![slot("a", true)]);
        let g = grant(&[Scope::Approvals], Some(sar(500_000)));
        let d = decide(
            &s,
            &attempt("dep", Some("a"), Decision::Approve),
            std::slice::from_ref(&g),
            Some(&sar(400_000)),
        )
        .unwrap();
        assert_eq!(d.delegation_id.as_deref(), Some("del_1"));
        assert_eq!(d.status, ApprovalStatus::Approved);
        assert_eq!(
            decide(
                &s,
                &attempt("dep", Some("a"), Decision::Approve),
                &[g],
                Some(&sar(2_000_000))
            ),
            Err(Refusal::NoAuthority(NoAuthority::OverLimit {
                limit: sar(500_000)
            }))
        );
        assert_eq!(
            decide(&s, &attempt("dep", Some("a"), Decision::Approve), &[], None),
            Err(Refusal::NoAuthority(NoAuthority::NoDelegation))
        );
    }

    #[test]
    fn past_expiry_a_request_is_expired_at_once() {
        let s = request(vec![slot("a", true)]);
        let mut late = attempt("a", None, Decision::Approve);
        late.now = 30 * DAY;
        assert_eq!(
            decide(&s, &late, &[], None),
            Err(Refusal::NotOpen(ApprovalStatus::Expired))
        );
        assert_eq!(s.status_at(30 * DAY - 1), ApprovalStatus::Requested);
    }

    #[test]
    fn redelegation_needs_own_authority() {
        let held = grant(&[Scope::Approvals], None);
        let now = 15 * DAY;
        assert!(is_redelegation(
            false,
            std::slice::from_ref(&held),
            &[Scope::All],
            now,
            now + DAY,
            now
        ));
        assert!(!is_redelegation(
            true,
            std::slice::from_ref(&held),
            &[Scope::Approvals],
            now,
            now + DAY,
            now
        ));
        assert!(!is_redelegation(
            false,
            std::slice::from_ref(&held),
            &[Scope::JourneyAssign],
            now,
            now + DAY,
            now
        ));
        assert!(
            !is_redelegation(false, &[held], &[Scope::Approvals], 21 * DAY, 22 * DAY, now),
            "periods do not overlap"
        );
    }

    #[test]
    fn assignment_authority() {
        let now = 15 * DAY;
        let g = grant(&[Scope::JourneyAssign], None);
        assert_eq!(
            may_assign("x", None, false, &[], now),
            Err(NoAuthority::NoDelegation)
        );
        assert!(may_assign("m", None, true, &[], now).is_ok());
        assert!(may_assign("a", Some("a"), false, &[], now).is_ok());
        assert!(may_assign("m", Some("a"), true, &[], now).is_ok());
        assert!(may_assign("d", Some("a"), false, std::slice::from_ref(&g), now).is_ok());
        assert_eq!(
            may_assign("d", Some("a"), false, &[], now),
            Err(NoAuthority::NoDelegation)
        );
        assert_eq!(
            may_assign(
                "d",
                Some("a"),
                false,
                &[grant(&[Scope::Approvals], None)],
                now
            ),
            Err(NoAuthority::OutOfScope)
        );
    }

    const USERS: [&str; 5] = ["usr_rm", "a", "b", "c", "dep"];

    fn arb_grant() -> impl Strategy<Value = Grant> {
        (
            prop::sample::subsequence(
                vec![Scope::Approvals, Scope::JourneyAssign, Scope::All],
                1..=2,
            ),
            prop::option::of((0i64..3_000, prop::sample::select(vec!["SAR", "USD"]))),
            0i64..50,
            0i64..100,
            prop::option::of(0i64..100),
        )
            .prop_map(|(scopes, max, from, len, revoked)| Grant {
                id: "del_p".into(),
                scopes,
                max_amount: max.map(|(amount, c)| Money {
                    amount: amount.into(),
                    currency: c.into(),
                }),
                valid_from: from,
                valid_to: from + len,
                revoked_at: revoked,
            })
    }

    fn arb_state() -> impl Strategy<Value = ApprovalState> {
        (
            prop::sample::subsequence(vec!["a", "b", "c", "usr_rm"], 1..=4),
            prop::collection::vec(any::<bool>(), 4),
            prop::option::of(0i64..200),
        )
            .prop_map(|(users, required, expires_at)| ApprovalState {
                stored: ApprovalStatus::Requested,
                expires_at,
                requested_by: "usr_rm".into(),
                slots: users
                    .iter()
                    .zip(required)
                    .map(|(u, r)| slot(u, r))
                    .collect(),
            })
    }

    fn arb_attempts() -> impl Strategy<Value = Vec<(usize, Option<usize>, bool, i64)>> {
        prop::collection::vec(
            (
                0..USERS.len(),
                prop::option::of(0..USERS.len()),
                any::<bool>(),
                0i64..30,
            ),
            0..12,
        )
    }

    proptest! {
        /// Whatever is tried and whenever, the status is one the rules allow, a final status
        /// never changes, the requester never decides, and a deputy decides only with authority.
        #[test]
        fn decisions_never_leave_a_final_status(
            initial in arb_state(),
            grants in prop::collection::vec(arb_grant(), 0..3),
            amount in prop::option::of((0i64..3_000, prop::sample::select(vec!["SAR", "USD"]))),
            attempts in arb_attempts(),
        ) {
            let amount = amount.map(|(amount, c)| Money { amount: amount.into(), currency: c.into() });
            let mut state = initial;
            let mut now = 0i64;
            let mut final_seen: Option<ApprovalStatus> = None;
            let mut decisions = 0usize;
            for (decider, behalf, approve, step) in attempts {
                now += step;
                let decision = if approve { Decision::Approve } else { Decision::Reject };
                let a = Attempt {
                    decider: USERS[decider],
                    on_behalf_of: behalf.map(|i| USERS[i]),
                    decision,
                    now,
                };
                let before = state.status_at(now);
                match decide(&state, &a, &grants, amount.as_ref()) {
                    Ok(d) => {
                        prop_assert_eq!(before, ApprovalStatus::Requested);
                        prop_assert_ne!(a.decider, "usr_rm");
                        prop_assert_ne!(a.slot_user(), "usr_rm");
                        if a.is_deputy() {
                            prop_assert!(authority(&grants, Scope::Approvals, amount.as_ref(), now).is_ok());
                            prop_assert!(d.delegation_id.is_some());
                        }
                        prop_assert!(state.slots[d.slot].decision.is_none());
                        state = apply(&state, &d, decision);
                        decisions += 1;
                    }
                    Err(Refusal::NotOpen(s)) => prop_assert!(s.is_final()),
                    Err(_) => {}
                }
                let after = state.status_at(now);
                if let Some(f) = final_seen {
                    prop_assert_eq!(after, f, "a final status changed");
                }
                if after.is_final() {
                    final_seen = Some(after);
                }
                let required: Vec<&Slot> = state.slots.iter().filter(|s| s.required).collect();
                match state.stored {
                    ApprovalStatus::Approved if required.is_empty() => prop_assert_eq!(decisions, 1),
                    ApprovalStatus::Approved => prop_assert!(required.iter().all(|s| s.decision == Some(Decision::Approve))),
                    ApprovalStatus::Rejected if required.is_empty() => prop_assert_eq!(decisions, 1),
                    ApprovalStatus::Rejected => prop_assert!(required.iter().any(|s| s.decision == Some(Decision::Reject))),
                    ApprovalStatus::Requested => prop_assert_eq!(outcome(&state.slots), ApprovalStatus::Requested),
                    ApprovalStatus::Expired => prop_assert!(false, "decisions never store expired"),
                }
            }
        }
    }
}
