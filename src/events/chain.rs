//! The hash chain that makes the timeline tamper-evident.
//!
//! Every event is a link of one chain: its customer's (`customer:<id>`), or, for an event that
//! concerns no customer, its root entity's (`delegation:<id>`, `template:<id>`, ...). Links are
//! numbered from 1 (`chain_seq`); each one's hash covers its content and the previous link's
//! hash, the first link's "previous" being 64 zeros. Changing any stored field changes the
//! hash, deleting a link leaves a gap in the numbering and a dangling previous hash, and
//! reordering breaks the previous hashes. Each chain's length and head hash are kept beside it,
//! so deleting the last links is detected too. Chains are independent: appending to one locks
//! only its own head row, never another customer's.
//!
//! The hashed bytes are the fields below, in this order, each written as `<byte length>:<UTF-8
//! bytes>`, or `~` when absent; the hash is SHA-256, in lower-case hex:
//!
//! `omnirail.event.v1`, tenant id, chain key, chain seq (decimal), event id, event type (as
//! stored, `omni.journey.created`), occurred at (milliseconds since the epoch, decimal), actor
//! id, channel, summary, metadata (the stored JSON text), payload (the stored JSON text),
//! previous hash.
//!
//! An event whose actor was proven by a token from the tenant's identity provider carries the
//! proof (the stored JSON text: `{"verified":true,"issuer":...}`); its link is hashed as
//! `omnirail.event.v2`, with the proof after the payload. An event without one is hashed as
//! v1, as every event was before proofs existed: removing a proof, or adding one, changes the
//! hash either way.
//!
//! An event made by a call with an API key carries the key's id (`key_...`, never the key);
//! its link is hashed as `omnirail.event.v3`, with the proof (or `~`) and then the key's id
//! after the payload. Events recorded before keys were named, and those no key made (a
//! customer's session token, the console, the server's own workers), hash as before.
//!
//! Since migration 0021 every event's content (summary, metadata, payload) is committed to
//! rather than hashed in its link, so that a customer's personal data can be erased without
//! breaking the chain: the commitment is the SHA-256 of `omnirail.content.v1`, a random salt
//! (32 hex digits, stored beside it), the summary, the metadata and the payload (each written
//! as above), and the link is hashed as `omnirail.event.v4`: fields 1 to 9 as in v1 (with
//! `omnirail.event.v4`), then the commitment in place of the summary, metadata and payload,
//! then the proof or `~`, the key's id or `~`, and the previous hash. Erasing an event removes
//! its content and its salt and keeps the commitment: the chain still verifies, and the
//! commitment, salted, tells nothing of what was erased. While the salt is there, the content
//! must match the commitment ([`intact_hash`]).

use sha2::{Digest, Sha256};

/// The previous hash of a chain's first link.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Everything a link's hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub tenant_id: &'a str,
    pub chain_key: &'a str,
    pub chain_seq: i64,
    pub id: &'a str,
    pub event_type: &'a str,
    pub occurred_at: i64,
    pub actor_id: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub summary: &'a str,
    pub metadata: &'a str,
    pub payload: &'a str,
    /// The proof of the actor, when a token proved them (v2 and v3 links).
    pub actor_proof: Option<&'a str>,
    /// The API key whose call made the change, by id (v3 and v4 links).
    pub key_id: Option<&'a str>,
    /// The commitment to the content, and its salt while the content is there (v4 links).
    pub commitment: Option<Commitment<'a>>,
    pub prev_hash: &'a str,
}

/// A v4 link's commitment to its content.
#[derive(Debug, Clone, Copy)]
pub struct Commitment<'a> {
    /// The stored commitment (lower-case hex SHA-256).
    pub hash: &'a str,
    /// The salt, `None` once the content was erased.
    pub salt: Option<&'a str>,
}

/// The commitment to an event's content under `salt`.
pub fn commit(salt: &str, summary: &str, metadata: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    for value in ["omnirail.content.v1", salt, summary, metadata, payload] {
        field(&mut h, Some(value));
    }
    hex::encode(h.finalize())
}

/// A new salt for a commitment: 128 random bits, in hex.
pub fn new_salt() -> String {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    hex::encode(salt)
}

/// The link's hash if its content matches its commitment (always so without one, or once
/// erased); an empty string, which matches no stored hash, if not.
pub fn intact_hash(l: &Link<'_>) -> String {
    if let Some(Commitment {
        hash: committed,
        salt: Some(salt),
    }) = l.commitment
        && commit(salt, l.summary, l.metadata, l.payload) != committed
    {
        return String::new();
    }
    hash(l)
}

fn field(h: &mut Sha256, value: Option<&str>) {
    match value {
        None => h.update(b"~"),
        Some(s) => {
            h.update(s.len().to_string().as_bytes());
            h.update(b":");
            h.update(s.as_bytes());
        }
    }
}

/// The link's hash, in lower-case hex.
pub fn hash(l: &Link<'_>) -> String {
    let mut h = Sha256::new();
    let seq = l.chain_seq.to_string();
    let at = l.occurred_at.to_string();
    if let Some(commitment) = l.commitment {
        return hash_v4(l, commitment.hash);
    }
    let version = match (l.key_id, l.actor_proof) {
        (Some(_), _) => "omnirail.event.v3",
        (None, Some(_)) => "omnirail.event.v2",
        (None, None) => "omnirail.event.v1",
    };
    for value in [
        Some(version),
        Some(l.tenant_id),
        Some(l.chain_key),
        Some(seq.as_str()),
        Some(l.id),
        Some(l.event_type),
        Some(at.as_str()),
        l.actor_id,
        l.channel,
        Some(l.summary),
        Some(l.metadata),
        Some(l.payload),
    ] {
        field(&mut h, value);
    }
    if l.key_id.is_some() {
        field(&mut h, l.actor_proof);
        field(&mut h, l.key_id);
    } else if let Some(proof) = l.actor_proof {
        field(&mut h, Some(proof));
    }
    field(&mut h, Some(l.prev_hash));
    hex::encode(h.finalize())
}

fn hash_v4(l: &Link<'_>, commitment: &str) -> String {
    let mut h = Sha256::new();
    let seq = l.chain_seq.to_string();
    let at = l.occurred_at.to_string();
    for value in [
        Some("omnirail.event.v4"),
        Some(l.tenant_id),
        Some(l.chain_key),
        Some(seq.as_str()),
        Some(l.id),
        Some(l.event_type),
        Some(at.as_str()),
        l.actor_id,
        l.channel,
        Some(commitment),
        l.actor_proof,
        l.key_id,
        Some(l.prev_hash),
    ] {
        field(&mut h, value);
    }
    hex::encode(h.finalize())
}

/// The chain an event belongs to: its customer's, else its first entity's, else the tenant's.
pub fn chain_key(entities: &[(&'static str, &str)]) -> String {
    entities
        .iter()
        .find(|(t, _)| *t == "customer")
        .or_else(|| entities.first())
        .map_or_else(|| "tenant".to_owned(), |(t, id)| format!("{t}:{id}"))
}

/// Why a chain fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// The link's number is not the next one: links before it are missing or out of order.
    SequenceGap,
    /// The link's previous hash is not the hash of the link before it.
    PreviousHashMismatch,
    /// The link's content does not hash to its stored hash: it was changed.
    ContentMismatch,
    /// The chain's stored length or head hash does not match its last link: links at the end
    /// are missing, or the head was changed.
    HeadMismatch,
}

impl Break {
    pub fn as_str(self) -> &'static str {
        match self {
            Break::SequenceGap => "sequence_gap",
            Break::PreviousHashMismatch => "previous_hash_mismatch",
            Break::ContentMismatch => "content_mismatch",
            Break::HeadMismatch => "head_mismatch",
        }
    }
}

/// Walks a chain link by link, in `chain_seq` order.
#[derive(Debug)]
pub struct Verifier {
    head: String,
    links: i64,
    broken: Option<(Option<String>, i64, Break)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            head: GENESIS.to_owned(),
            links: 0,
            broken: None,
        }
    }
}

/// The result of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Links read.
    pub links: i64,
    /// Hash of the last link read (the genesis value for an empty chain).
    pub head: String,
    /// The first break: the event it names (none for a head mismatch), its `chain_seq`, why.
    pub broken: Option<(Option<String>, i64, Break)>,
}

impl Verifier {
    /// Checks the next link; `false` once the chain is broken (there is no point going on).
    pub fn push(&mut self, link: &Link<'_>, stored_hash: &str) -> bool {
        self.push_hashed(link, stored_hash, &intact_hash(link))
    }

    /// As [`Verifier::push`], with the link's hash already computed (hashes are independent of
    /// each other, so a caller may compute them ahead, in parallel with reading).
    pub fn push_hashed(&mut self, link: &Link<'_>, stored_hash: &str, computed: &str) -> bool {
        let expected = self.links + 1;
        let why = if link.chain_seq != expected {
            Some(Break::SequenceGap)
        } else if link.prev_hash != self.head {
            Some(Break::PreviousHashMismatch)
        } else if computed != stored_hash {
            Some(Break::ContentMismatch)
        } else {
            None
        };
        if let Some(why) = why {
            self.broken = Some((Some(link.id.to_owned()), link.chain_seq, why));
            return false;
        }
        self.links = expected;
        self.head = stored_hash.to_owned();
        true
    }

    /// The verdict, given the chain's stored length and head hash.
    pub fn finish(self, stored: Option<(i64, &str)>) -> Verdict {
        let mut broken = self.broken;
        if broken.is_none() {
            let (length, head) = stored.unwrap_or((0, GENESIS));
            if length != self.links || head != self.head {
                broken = Some((None, self.links + 1, Break::HeadMismatch));
            }
        }
        Verdict {
            links: self.links,
            head: self.head,
            broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link<'static> {
        Link {
            tenant_id: "ten_1",
            chain_key: "customer:ent_1",
            chain_seq: 1,
            id: "evt_1",
            event_type: "omni.journey.created",
            occurred_at: 1_705_314_600_000,
            actor_id: Some("usr_rm_001"),
            channel: Some("web"),
            summary: "SME Onboarding journey created",
            metadata: "{}",
            payload: "{}",
            actor_proof: None,
            key_id: None,
            commitment: None,
            prev_hash: GENESIS,
        }
    }

    #[test]
    fn the_hash_is_stable_and_covers_every_field() {
        let base = hash(&link());
        // Computed independently from the scheme in docs/timeline.md (Python's hashlib).
        assert_eq!(
            base,
            "2dc6410764070887acfe4080e546ce3c725e131e40a723f45f87f0f77f81b943"
        );
        let variants = [
            Link {
                chain_seq: 2,
                ..link()
            },
            Link {
                id: "evt_2",
                ..link()
            },
            Link {
                occurred_at: 1,
                ..link()
            },
            Link {
                actor_id: None,
                ..link()
            },
            Link {
                actor_id: Some(""),
                ..link()
            },
            Link {
                channel: None,
                ..link()
            },
            Link {
                summary: "x",
                ..link()
            },
            Link {
                metadata: "{\"a\":1}",
                ..link()
            },
            Link {
                payload: "[]",
                ..link()
            },
            Link {
                prev_hash: "1",
                ..link()
            },
            Link {
                chain_key: "customer:ent_2",
                ..link()
            },
            Link {
                tenant_id: "ten_2",
                ..link()
            },
            Link {
                event_type: "omni.journey.advanced",
                ..link()
            },
            Link {
                actor_proof: Some(r#"{"verified":true}"#),
                ..link()
            },
            Link {
                key_id: Some("key_1"),
                ..link()
            },
        ];
        for v in variants {
            assert_ne!(hash(&v), base, "{v:?}");
        }
    }

    #[test]
    fn a_proven_actor_is_hashed_as_v2_and_its_proof_is_covered() {
        let proof = r#"{"verified":true,"issuer":"https://idp.bank.example","subject":"usr_rm_001","tokenId":"jti-1"}"#;
        let proven = Link {
            actor_proof: Some(proof),
            ..link()
        };
        // Computed independently from the scheme in docs/timeline.md (Python's hashlib).
        assert_eq!(
            hash(&proven),
            "8be35f06a4ae4a830181c40c228aa4a9e081d0c6709888850aa1a2aa6efe79d2"
        );
        let other = Link {
            actor_proof: Some(
                r#"{"verified":true,"issuer":"https://idp.bank.example","subject":"usr_rm_001","tokenId":"jti-2"}"#,
            ),
            ..link()
        };
        assert_ne!(hash(&other), hash(&proven));
    }

    #[test]
    fn a_key_is_hashed_as_v3_with_or_without_a_proof() {
        let keyed = Link {
            key_id: Some("key_01HZX3"),
            ..link()
        };
        let proof = r#"{"verified":true}"#;
        let keyed_and_proven = Link {
            actor_proof: Some(proof),
            ..keyed
        };
        // Computed independently from the scheme in docs/timeline.md (Python's hashlib).
        assert_eq!(
            hash(&keyed),
            "d375562b31c0025399f5e80fa8f3deaed02c8e100d16146224ca8e766f0b89fe"
        );
        assert_eq!(
            hash(&keyed_and_proven),
            "795e1295c03e3d66281261d105eb0ab013b387b56cedfefb20a67238c3a49186"
        );
        // The key's id cannot pass for a proof, nor a proof for a key's id.
        let proof_as_key = Link {
            key_id: Some(proof),
            ..link()
        };
        assert_ne!(hash(&proof_as_key), hash(&keyed_and_proven));
        assert_ne!(
            hash(&Link {
                key_id: Some("key_2"),
                ..keyed
            }),
            hash(&keyed)
        );
    }

    #[test]
    fn a_v4_link_commits_to_its_content_which_can_then_be_erased() {
        let salt = "00112233445566778899aabbccddeeff";
        let committed = commit(salt, link().summary, link().metadata, link().payload);
        let v4 = Link {
            key_id: Some("key_01HZX3"),
            commitment: Some(Commitment {
                hash: &committed,
                salt: Some(salt),
            }),
            ..link()
        };
        // Computed independently from the scheme in docs/timeline.md (Python's hashlib).
        assert_eq!(
            committed,
            "fafff9259835dba671340ca2f37dcb0e400b7a2c8ad643b4e9f8fce2518ff3e5"
        );
        assert_eq!(
            hash(&v4),
            "bb991057820f649fcecb9c3d02644de5d82ea03116ded7584827770aed3cbce4"
        );
        assert_eq!(intact_hash(&v4), hash(&v4));
        // Changed content no longer matches its commitment...
        let changed = Link { summary: "x", ..v4 };
        assert_eq!(intact_hash(&changed), "");
        // ... but erased content (no salt) leaves the link's hash as it was.
        let erased = Link {
            summary: "(erased)",
            metadata: "{}",
            payload: "{}",
            commitment: Some(Commitment {
                hash: &committed,
                salt: None,
            }),
            ..v4
        };
        assert_eq!(intact_hash(&erased), hash(&v4));
        // The commitment is covered, and a salt changes it.
        assert_ne!(commit("00", "a", "b", "c"), commit("01", "a", "b", "c"));
        let other = commit(salt, "x", "{}", "{}");
        assert_ne!(
            hash(&Link {
                commitment: Some(Commitment {
                    hash: &other,
                    salt: None
                }),
                ..v4
            }),
            hash(&v4)
        );
        assert_eq!(new_salt().len(), 32);
        assert_ne!(new_salt(), new_salt());
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let a = Link {
            summary: "ab",
            metadata: "c",
            ..link()
        };
        let b = Link {
            summary: "a",
            metadata: "bc",
            ..link()
        };
        assert_ne!(hash(&a), hash(&b));
    }

    /// Three valid links, with their hashes.
    fn three() -> Vec<(Link<'static>, String)> {
        let mut out: Vec<(Link<'static>, String)> = Vec::new();
        let ids = ["evt_1", "evt_2", "evt_3"];
        for (i, id) in ids.iter().enumerate() {
            let prev: &'static str = match out.last() {
                Some((_, h)) => Box::leak(h.clone().into_boxed_str()),
                None => GENESIS,
            };
            let l = Link {
                chain_seq: i as i64 + 1,
                id,
                prev_hash: prev,
                ..link()
            };
            let h = hash(&l);
            out.push((l, h));
        }
        out
    }

    fn walk(links: &[(Link<'_>, String)], stored: Option<(i64, &str)>) -> Verdict {
        let mut v = Verifier::default();
        for (l, h) in links {
            if !v.push(l, h) {
                break;
            }
        }
        v.finish(stored)
    }

    #[test]
    fn an_intact_chain_verifies_and_any_change_is_named() {
        let links = three();
        let head = links[2].1.clone();
        let ok = walk(&links, Some((3, &head)));
        assert_eq!(ok.broken, None);
        assert_eq!((ok.links, ok.head.as_str()), (3, head.as_str()));

        let mut edited = three();
        edited[1].0.summary = "changed";
        let v = walk(&edited, Some((3, &head)));
        assert_eq!(
            v.broken,
            Some((Some("evt_2".into()), 2, Break::ContentMismatch))
        );

        let mut deleted = three();
        deleted.remove(1);
        let v = walk(&deleted, Some((3, &head)));
        assert_eq!(
            v.broken,
            Some((Some("evt_3".into()), 3, Break::SequenceGap))
        );

        let mut swapped = three();
        swapped.swap(0, 1);
        let v = walk(&swapped, Some((3, &head)));
        assert_eq!(v.broken.unwrap().2, Break::SequenceGap);

        let tail = &three()[..2];
        let v = walk(tail, Some((3, &head)));
        assert_eq!(v.broken, Some((None, 3, Break::HeadMismatch)));
        assert_eq!(walk(&[], None).broken, None, "an empty chain is valid");
    }

    #[test]
    fn events_chain_on_their_customer_else_their_root() {
        assert_eq!(
            chain_key(&[("journey", "jrn_1"), ("customer", "ent_1")]),
            "customer:ent_1"
        );
        assert_eq!(
            chain_key(&[("delegation", "del_1"), ("user", "usr_1")]),
            "delegation:del_1"
        );
        assert_eq!(chain_key(&[]), "tenant");
    }
}
