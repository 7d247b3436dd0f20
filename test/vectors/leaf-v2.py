# An independent encoding (Python struct + hashlib, not this repository's code) of the leaf v2
# vectors in test/vectors/leaf-v2.json, from the table in docs/design.md ("Leaf (version 2):
# corrections"): BCS u8 version 2, strings and vectors as ULEB128 length + bytes, u64
# little-endian, then u8 kind (1 void, 2 amend) and vector<u8> corrects (32 bytes).
# Run: python3 test/vectors/leaf-v2.py > test/vectors/leaf-v2.json
import hashlib, json, struct


def uleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vec(b):
    return uleb(len(b)) + b


def leaf_v1(e):
    return (bytes([1]) + vec(e["namespace"].encode()) + vec(e["request_id"].encode()) + vec(e["caller"].encode())
            + vec(e["action"].encode()) + struct.pack("<Q", e["units"]) + vec(bytes.fromhex(e["artifact_digest"]))
            + struct.pack("<Q", e["ts_ms"]))


def leaf_v2(e):
    kind = {"void": 1, "amend": 2}[e["kind"]]
    corrects = bytes.fromhex(e["corrects"])
    assert len(corrects) == 32
    return (bytes([2]) + vec(e["namespace"].encode()) + vec(e["request_id"].encode()) + vec(e["caller"].encode())
            + vec(e["action"].encode()) + struct.pack("<Q", e["units"]) + vec(bytes.fromhex(e["artifact_digest"]))
            + struct.pack("<Q", e["ts_ms"]) + bytes([kind]) + vec(corrects))


def leaf_hash(leaf):
    return hashlib.sha256(b"\x00" + leaf).hexdigest()


# The original: leaf v1 vector 0 of test/vectors/leaf-v1.json.
original = {"namespace": "acme/prod", "request_id": "req-42", "caller": "0xabc", "action": "recall", "units": 3,
            "artifact_digest": "ab" * 32, "ts_ms": 1763800000000}
h0 = leaf_hash(leaf_v1(original))
assert h0 == "e89f2a6f84a8b3301f71d104ad12699c9d0c129570a46c40ce070c55271c57ec"

cases = []


def add(name, event):
    leaf = leaf_v2(event)
    cases.append({"name": name, "event": event, "leaf": leaf.hex(), "leaf_hash": leaf_hash(leaf)})
    return cases[-1]["leaf_hash"]


# Void of the original: the replaced version's caller, action and digest, units 0.
add("void of the original (leaf v1 vector 0)",
    dict(original, request_id="req-42-void", units=0, kind="void", corrects=h0))
# A chain: amend the original (new units, caller, no digest), amend the amendment (long request
# id: a two-byte ULEB128 length; the largest JSON-safe units), then void that head.
h1 = add("amend of the original: new units and caller, digest removed",
         dict(original, request_id="req-42-fix-1", caller="0xdef", units=5, artifact_digest="", kind="amend",
              corrects=h0))
long_rid = "fix-" + "x" * 196
h2 = add("amend of the amendment: 200-character request id, units 2^53-1, new action and digest",
         dict(original, request_id=long_rid, caller="0xdef", action="recall.batch", units=2**53 - 1,
              artifact_digest="cd" * 32, kind="amend", corrects=h1))
add("void of the second amendment (the chain's head)",
    dict(original, request_id="req-42-void-2", caller="0xdef", action="recall.batch", units=0,
         artifact_digest="cd" * 32, kind="void", corrects=h2))

print(json.dumps({
    "description": "Leaf v2 (correction) vectors (docs/design.md, \"Leaf (version 2): corrections\"). Bytes were computed "
                   "independently by test/vectors/leaf-v2.py (Python struct + hashlib) from the table in docs/design.md; "
                   "the TypeScript encoder, the reference BCS schema and the Move module must all reproduce them. The cases "
                   "form one chain from leaf v1 vector 0 (its leaf hash is the first corrects).",
    "original_leaf_hash": h0,
    "cases": cases,
}, indent=2, ensure_ascii=False))
