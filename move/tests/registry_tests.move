#[test_only]
module receipts::registry_tests;

use receipts::registry::{Self, AnchorCap, EpochAnchored, Registry};
use sui::{clock, event, test_scenario};

const PUBLISHER: address = @0xA;

#[test]
fun init_gives_the_publisher_a_registry_and_its_cap() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    registry::init_for_testing(scenario.ctx());
    scenario.next_tx(PUBLISHER);
    let cap = scenario.take_from_sender<AnchorCap>();
    let reg = scenario.take_shared<Registry>();
    assert!(cap.cap_registry_id() == object::id(&reg));
    assert!(reg.next_epoch() == 0);
    assert!(!reg.is_anchored(0));
    assert!(reg.version() == registry::current_version_for_testing());
    test_scenario::return_shared(reg);
    scenario.return_to_sender(cap);
    scenario.end();
}

#[test]
fun anchor_stores_the_record_and_emits_one_event() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let cap = registry::create_registry(scenario.ctx());
    scenario.next_tx(PUBLISHER);
    let mut reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(1_763_800_000_000);
    let root = x"e89f2a6f84a8b3301f71d104ad12699c9d0c129570a46c40ce070c55271c57ec";
    registry::anchor(&mut reg, &cap, 0, root, 1, 10, 20, &clock);
    // The event, field by field.
    let events = event::events_by_type<EpochAnchored>();
    assert!(events.length() == 1);
    let expected = registry::epoch_anchored_for_testing(object::id(&reg), 0, root, 1);
    assert!(events[0] == expected);
    // Shared objects go back before the transaction ends.
    test_scenario::return_shared(reg);
    let effects = scenario.next_tx(PUBLISHER);
    assert!(effects.num_user_events() == 1);
    let reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let (stored_root, stored_size) = reg.epoch_root(0);
    assert!(stored_root == root && stored_size == 1);
    let (first_ts_ms, last_ts_ms, anchored_at_ms) = reg.epoch_times(0);
    assert!(first_ts_ms == 10);
    assert!(last_ts_ms == 20);
    assert!(anchored_at_ms == 1_763_800_000_000);
    assert!(reg.next_epoch() == 1);
    // The single leaf of a one-leaf tree is its root: an empty proof.
    assert!(registry::verify_inclusion(&reg, 0, root, 0, vector[]));
    test_scenario::return_shared(reg);
    clock.destroy_for_testing();
    transfer::public_transfer(cap, PUBLISHER);
    scenario.end();
}

/// A registry with epoch 0 (the two-leaf tree of `leaf`, `sibling`) anchored, then left at
/// another version, as an upgrade that bumped VERSION and migrated would leave it for old code.
#[test_only]
fun registry_of_another_version(scenario: &mut test_scenario::Scenario): (AnchorCap, Registry) {
    let cap = registry::create_registry(scenario.ctx());
    scenario.next_tx(PUBLISHER);
    let mut reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let clock = clock::create_for_testing(scenario.ctx());
    registry::anchor(
        &mut reg,
        &cap,
        0,
        x"e89f2a6f84a8b3301f71d104ad12699c9d0c129570a46c40ce070c55271c57ec",
        1,
        1,
        2,
        &clock,
    );
    clock.destroy_for_testing();
    reg.set_version_for_testing(registry::current_version_for_testing() + 1);
    (cap, reg)
}

#[test, expected_failure(abort_code = registry::EWrongVersion)]
fun verify_inclusion_checks_the_version() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let (_cap, reg) = registry_of_another_version(&mut scenario);
    registry::verify_inclusion(
        &reg,
        0,
        x"e89f2a6f84a8b3301f71d104ad12699c9d0c129570a46c40ce070c55271c57ec",
        0,
        vector[],
    );
    abort
}

#[test, expected_failure(abort_code = registry::EWrongVersion)]
fun verify_event_checks_the_version() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let (_cap, reg) = registry_of_another_version(&mut scenario);
    registry::verify_event(
        &reg,
        0,
        b"acme/prod".to_string(),
        b"req-42".to_string(),
        b"0xabc".to_string(),
        b"recall".to_string(),
        3,
        vector[],
        0,
        0,
        vector[],
    );
    abort
}

#[test, expected_failure(abort_code = registry::EWrongVersion)]
fun next_epoch_checks_the_version() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let (_cap, reg) = registry_of_another_version(&mut scenario);
    reg.next_epoch();
    abort
}

#[test, expected_failure(abort_code = registry::EWrongVersion)]
fun is_anchored_checks_the_version() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let (_cap, reg) = registry_of_another_version(&mut scenario);
    reg.is_anchored(0);
    abort
}

#[test, expected_failure(abort_code = registry::EWrongVersion)]
fun epoch_root_checks_the_version() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let (_cap, reg) = registry_of_another_version(&mut scenario);
    reg.epoch_root(0);
    abort
}

#[test, expected_failure(abort_code = registry::EWrongVersion)]
fun epoch_times_checks_the_version() {
    let mut scenario = test_scenario::begin(PUBLISHER);
    let (_cap, reg) = registry_of_another_version(&mut scenario);
    reg.epoch_times(0);
    abort
}
