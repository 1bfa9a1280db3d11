#!/usr/bin/env python3
"""Re-verifies an Omnirail timeline export (JSON Lines) without Omnirail.

    curl -s "$OMNI/timeline/export?entityType=customer&entityId=ent_1" -H "x-api-key: $KEY" > chain.jsonl
    python3 tools/verify_timeline_export.py chain.jsonl

Prints one line per chain and exits 1 if any chain is broken. The scheme is in docs/timeline.md.
"""
import hashlib
import json
import sys

GENESIS = "0" * 64


def field(value):
    if value is None:
        return b"~"
    data = value.encode("utf-8")
    return str(len(data)).encode() + b":" + data


def commitment(salt, e):
    parts = ["omnirail.content.v1", salt, e["summary"], e["metadata"], e["payload"]]
    return hashlib.sha256(b"".join(field(p) for p in parts)).hexdigest()


def link_hash(e):
    # A link with a content commitment (v4) hashes the commitment in place of the content, then
    # the proof and the key's id, each or `~`; while its salt is there the content must match
    # the commitment. Else a link whose call carried an API key names the key and is hashed as
    # v3, with the proof (or none) and then the key's id; else one whose actor a token proved
    # carries the proof and is hashed as v2; else v1 (docs/timeline.md).
    proof = e.get("actorProof")
    key_id = e.get("keyId")
    committed = e.get("contentHash")
    if committed is not None:
        salt = e.get("contentSalt")
        if salt is not None and commitment(salt, e) != committed:
            return ""
        parts = [
            "omnirail.event.v4", e["tenantId"], e["chainKey"], str(e["chainSeq"]), e["id"],
            e["eventType"], str(e["occurredAt"]), e["actorId"], e["channel"], committed,
            proof, key_id, e["prevHash"],
        ]
        return hashlib.sha256(b"".join(field(p) for p in parts)).hexdigest()
    if key_id is not None:
        version, extra = "omnirail.event.v3", [proof, key_id]
    elif proof is not None:
        version, extra = "omnirail.event.v2", [proof]
    else:
        version, extra = "omnirail.event.v1", []
    parts = [
        version, e["tenantId"], e["chainKey"], str(e["chainSeq"]), e["id"],
        e["eventType"], str(e["occurredAt"]), e["actorId"], e["channel"], e["summary"],
        e["metadata"], e["payload"],
    ] + extra + [e["prevHash"]]
    return hashlib.sha256(b"".join(field(p) for p in parts)).hexdigest()


def main(path):
    ok = True
    chains = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["record"] == "event":
                c = chains.setdefault(rec["chainKey"], {"n": 0, "head": GENESIS, "broken": None})
                if c["broken"]:
                    continue
                if rec["chainSeq"] != c["n"] + 1:
                    c["broken"] = (rec["id"], "sequence_gap")
                elif rec["prevHash"] != c["head"]:
                    c["broken"] = (rec["id"], "previous_hash_mismatch")
                elif link_hash(rec) != rec["hash"]:
                    c["broken"] = (rec["id"], "content_mismatch")
                else:
                    c["n"] += 1
                    c["head"] = rec["hash"]
            elif rec["record"] == "chain_head":
                c = chains.setdefault(rec["chainKey"], {"n": 0, "head": GENESIS, "broken": None})
                if not c["broken"] and (rec["length"] != c["n"] or rec["headHash"] != c["head"]):
                    c["broken"] = (None, "head_mismatch")
                broken = c["broken"]
                ok = ok and broken is None
                status = "valid" if broken is None else f"BROKEN at {broken[0]}: {broken[1]}"
                print(f"{rec['chainKey']}: {c['n']} events, head {c['head']}, {status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
