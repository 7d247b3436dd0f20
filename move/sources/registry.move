/// Registry of sui-receipts epoch roots.
///
/// A deployment shares one `Registry`; its `AnchorCap` (held by the service's key) anchors
/// each sealed epoch's RFC 6962 Merkle root, strictly in order and never overwritten. Anyone
/// can then check a receipt on chain: `verify_inclusion` walks an RFC 9162 audit path to the
/// stored root, and `verify_event` first rebuilds the leaf (leaf v1, BCS) from plain fields;
/// `verify_correction` does the same for a correction (void or amend, leaf v2).
/// Every check here has a TypeScript twin (test/chain/registry-model.ts) run on the same vectors.
///
/// Upgrades: the registry records the `VERSION` of the code that may use it, and every function
/// that takes it checks that version. A package upgrade that must retire old code bumps `VERSION`
/// and the cap holder calls `migrate` (from the new package): from then on only the new code
/// works on the registry and calls through any older package id abort with `EWrongVersion`.
module receipts::registry;

use std::{hash::sha2_256, string::String};
use sui::{bcs, clock::Clock, event, table::{Self, Table}};

#[error]
const EWrongCap: vector<u8> = b"This AnchorCap belongs to another registry";
#[error]
const EEpochOutOfOrder: vector<u8> =
    b"Epochs are anchored strictly in order: this is not the next expected epoch";
#[error]
const EBadRootLength: vector<u8> = b"An epoch root must be exactly 32 bytes";
#[error]
const EZeroSize: vector<u8> = b"An epoch must hold at least one event";
#[error]
const EBadTimeRange: vector<u8> = b"first_ts_ms must not be after last_ts_ms";
#[error]
const EWrongVersion: vector<u8> =
    b"This registry is used by another version of the package: call its latest version";
#[error]
const ENotNewer: vector<u8> =
    b"migrate moves a registry to a newer VERSION only: it is already at this version or later";

/// The version of this code; a registry is usable only by code of its own `version`.
const VERSION: u64 = 1;

const LEAF_VERSION: u8 = 1;
const LEAF_VERSION_CORRECTION: u8 = 2;
/// The `kind` of a correction's leaf (v2).
const KIND_VOID: u8 = 1;
const KIND_AMEND: u8 = 2;
const HASH_LENGTH: u64 = 32;

/// One deployment's anchored epochs.
public struct Registry has key {
    id: UID,
    epochs: Table<u64, EpochRecord>,
    next_epoch: u64,
    /// The `VERSION` of the code allowed to use this registry (see `migrate`).
    version: u64,
}

/// The right to anchor epochs into one registry.
public struct AnchorCap has key, store {
    id: UID,
    registry_id: ID,
}

/// What is kept per epoch.
public struct EpochRecord has copy, drop, store {
    root: vector<u8>,
    size: u64,
    first_ts_ms: u64,
    last_ts_ms: u64,
    anchored_at_ms: u64,
}

/// Emitted once per anchored epoch.
public struct EpochAnchored has copy, drop {
    registry_id: ID,
    epoch: u64,
    root: vector<u8>,
    size: u64,
}

/// Leaf v1 (docs/design.md): BCS of these fields in this order is the leaf.
public struct LeafV1 has copy, drop {
    version: u8,
    namespace: String,
    request_id: String,
    caller: String,
    action: String,
    units: u64,
    artifact_digest: vector<u8>,
    ts_ms: u64,
}

/// Leaf v2 (docs/design.md): a correction of a recorded event; `corrects` is the leaf hash of
/// the version it replaces. BCS of these fields in this order is the leaf.
public struct LeafV2 has copy, drop {
    version: u8,
    namespace: String,
    request_id: String,
    caller: String,
    action: String,
    units: u64,
    artifact_digest: vector<u8>,
    ts_ms: u64,
    kind: u8,
    corrects: vector<u8>,
}

/// The publisher gets a registry and its cap.
fun init(ctx: &mut TxContext) {
    let cap = create_registry(ctx);
    transfer::public_transfer(cap, ctx.sender());
}

/// Shares a new, empty registry and returns the cap that anchors into it.
public fun create_registry(ctx: &mut TxContext): AnchorCap {
    let registry = Registry {
        id: object::new(ctx),
        epochs: table::new(ctx),
        next_epoch: 0,
        version: VERSION,
    };
    let cap = AnchorCap { id: object::new(ctx), registry_id: object::id(&registry) };
    transfer::share_object(registry);
    cap
}

/// Anchors the root of `epoch`, which must be the next expected one.
public fun anchor(
    registry: &mut Registry,
    cap: &AnchorCap,
    epoch: u64,
    root: vector<u8>,
    size: u64,
    first_ts_ms: u64,
    last_ts_ms: u64,
    clock: &Clock,
) {
    registry.check_version();
    assert!(cap.registry_id == object::id(registry), EWrongCap);
    assert!(epoch == registry.next_epoch, EEpochOutOfOrder);
    assert!(root.length() == HASH_LENGTH, EBadRootLength);
    assert!(size > 0, EZeroSize);
    assert!(first_ts_ms <= last_ts_ms, EBadTimeRange);
    event::emit(EpochAnchored { registry_id: object::id(registry), epoch, root, size });
    let anchored_at_ms = clock.timestamp_ms();
    let record = EpochRecord { root, size, first_ts_ms, last_ts_ms, anchored_at_ms };
    registry.epochs.add(epoch, record);
    registry.next_epoch = epoch + 1;
}

/// After an upgrade that bumped `VERSION`: moves the registry to this code's version, so that
/// older versions of the package can no longer use it. Only the registry's cap may.
public fun migrate(registry: &mut Registry, cap: &AnchorCap) {
    assert!(cap.registry_id == object::id(registry), EWrongCap);
    assert!(registry.version < VERSION, ENotNewer);
    registry.version = VERSION;
}

/// Whether `proof` shows `leaf_hash` at `leaf_index` under the anchored root of `epoch`.
/// False, never an abort, for an unknown epoch or a bad proof (aborts only on `EWrongVersion`).
public fun verify_inclusion(
    registry: &Registry,
    epoch: u64,
    leaf_hash: vector<u8>,
    leaf_index: u64,
    proof: vector<vector<u8>>,
): bool {
    registry.check_version();
    if (!registry.epochs.contains(epoch)) return false;
    let record = &registry.epochs[epoch];
    verify_proof(leaf_hash, leaf_index, record.size, &proof, &record.root)
}

/// Rebuilds the leaf from the event's fields, then `verify_inclusion`.
public fun verify_event(
    registry: &Registry,
    epoch: u64,
    namespace: String,
    request_id: String,
    caller: String,
    action: String,
    units: u64,
    artifact_digest: vector<u8>,
    ts_ms: u64,
    leaf_index: u64,
    proof: vector<vector<u8>>,
): bool {
    registry.check_version();
    let digest_length = artifact_digest.length();
    if (digest_length != 0 && digest_length != HASH_LENGTH) return false;
    let leaf = leaf_hash(namespace, request_id, caller, action, units, artifact_digest, ts_ms);
    verify_inclusion(registry, epoch, leaf, leaf_index, proof)
}

/// Rebuilds a correction's leaf (v2) from its fields, then `verify_inclusion`. False for what
/// leaf v2 does not allow: a kind other than void (1) or amend (2), `corrects` not 32 bytes,
/// a digest neither empty nor 32 bytes, a void with units.
public fun verify_correction(
    registry: &Registry,
    epoch: u64,
    namespace: String,
    request_id: String,
    caller: String,
    action: String,
    units: u64,
    artifact_digest: vector<u8>,
    ts_ms: u64,
    kind: u8,
    corrects: vector<u8>,
    leaf_index: u64,
    proof: vector<vector<u8>>,
): bool {
    registry.check_version();
    let digest_length = artifact_digest.length();
    if (digest_length != 0 && digest_length != HASH_LENGTH) return false;
    if (kind != KIND_VOID && kind != KIND_AMEND) return false;
    if (corrects.length() != HASH_LENGTH) return false;
    if (kind == KIND_VOID && units != 0) return false;
    let leaf = leaf_hash_v2(
        namespace,
        request_id,
        caller,
        action,
        units,
        artifact_digest,
        ts_ms,
        kind,
        corrects,
    );
    verify_inclusion(registry, epoch, leaf, leaf_index, proof)
}

/// SHA-256(0x00 ‖ BCS(LeafV1 { … })): the leaf hash of an event.
public fun leaf_hash(
    namespace: String,
    request_id: String,
    caller: String,
    action: String,
    units: u64,
    artifact_digest: vector<u8>,
    ts_ms: u64,
): vector<u8> {
    let leaf = LeafV1 {
        version: LEAF_VERSION,
        namespace,
        request_id,
        caller,
        action,
        units,
        artifact_digest,
        ts_ms,
    };
    let mut data = vector[0u8];
    data.append(bcs::to_bytes(&leaf));
    sha2_256(data)
}

/// SHA-256(0x00 ‖ BCS(LeafV2 { … })): the leaf hash of a correction.
public fun leaf_hash_v2(
    namespace: String,
    request_id: String,
    caller: String,
    action: String,
    units: u64,
    artifact_digest: vector<u8>,
    ts_ms: u64,
    kind: u8,
    corrects: vector<u8>,
): vector<u8> {
    let leaf = LeafV2 {
        version: LEAF_VERSION_CORRECTION,
        namespace,
        request_id,
        caller,
        action,
        units,
        artifact_digest,
        ts_ms,
        kind,
        corrects,
    };
    let mut data = vector[0u8];
    data.append(bcs::to_bytes(&leaf));
    sha2_256(data)
}

/// RFC 9162 §2.1.3.2: whether `proof` leads from `leaf_hash` at `leaf_index` in a tree of
/// `tree_size` leaves to `root`. Rejects an index ≥ size and a path of the wrong length.
public fun verify_proof(
    leaf_hash: vector<u8>,
    leaf_index: u64,
    tree_size: u64,
    proof: &vector<vector<u8>>,
    root: &vector<u8>,
): bool {
    if (leaf_index >= tree_size) return false;
    if (leaf_hash.length() != HASH_LENGTH) return false;
    let mut node = leaf_index;
    let mut last = tree_size - 1;
    let mut hash = leaf_hash;
    let mut i = 0;
    while (i < proof.length()) {
        let sibling = &proof[i];
        if (sibling.length() != HASH_LENGTH) return false;
        if (last == 0) return false;
        if (node % 2 == 1 || node == last) {
            hash = hash_children(sibling, &hash);
            if (node % 2 == 0) {
                while (node % 2 == 0 && node != 0) {
                    node = node >> 1;
                    last = last >> 1;
                };
            };
        } else {
            hash = hash_children(&hash, sibling);
        };
        node = node >> 1;
        last = last >> 1;
        i = i + 1;
    };
    last == 0 && &hash == root
}

/// SHA-256(0x01 ‖ left ‖ right).
fun hash_children(left: &vector<u8>, right: &vector<u8>): vector<u8> {
    let mut data = vector[1u8];
    data.append(*left);
    data.append(*right);
    sha2_256(data)
}

fun check_version(registry: &Registry) {
    assert!(registry.version == VERSION, EWrongVersion);
}

// === Reads ===

public fun next_epoch(registry: &Registry): u64 {
    registry.check_version();
    registry.next_epoch
}

public fun is_anchored(registry: &Registry, epoch: u64): bool {
    registry.check_version();
    registry.epochs.contains(epoch)
}

/// Root and size of an anchored epoch (aborts if it is not anchored: check `is_anchored`).
public fun epoch_root(registry: &Registry, epoch: u64): (vector<u8>, u64) {
    registry.check_version();
    let record = &registry.epochs[epoch];
    (record.root, record.size)
}

/// The event time range and the anchoring time of an anchored epoch, all Unix ms:
/// (first_ts_ms, last_ts_ms, anchored_at_ms). Aborts if it is not anchored.
public fun epoch_times(registry: &Registry, epoch: u64): (u64, u64, u64) {
    registry.check_version();
    let record = &registry.epochs[epoch];
    (record.first_ts_ms, record.last_ts_ms, record.anchored_at_ms)
}

/// The `VERSION` of the code this registry accepts (no check: it tells which code to call).
public fun version(registry: &Registry): u64 { registry.version }

public fun cap_registry_id(cap: &AnchorCap): ID { cap.registry_id }

#[test_only]
public fun init_for_testing(ctx: &mut TxContext) { init(ctx) }

#[test_only]
/// Stands for a registry left at another version by an upgrade.
public fun set_version_for_testing(registry: &mut Registry, version: u64) {
    registry.version = version;
}

#[test_only]
public fun current_version_for_testing(): u64 { VERSION }

#[test_only]
public fun epoch_anchored_for_testing(
    registry_id: ID,
    epoch: u64,
    root: vector<u8>,
    size: u64,
): EpochAnchored {
    EpochAnchored { registry_id, epoch, root, size }
}
