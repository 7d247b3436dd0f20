#[test_only]
module receipts::registry_tests;

use receipts::registry::{Self, AnchorCap, Registry};
use sui::{clock, test_scenario};

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
    // Shared objects go back before the transaction ends.
    test_scenario::return_shared(reg);
    let effects = scenario.next_tx(PUBLISHER);
    assert!(effects.num_user_events() == 1);
    let reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let (stored_root, stored_size) = reg.epoch_root(0);
    assert!(stored_root == root && stored_size == 1);
    assert!(reg.next_epoch() == 1);
    // The single leaf of a one-leaf tree is its root: an empty proof.
    assert!(registry::verify_inclusion(&reg, 0, root, 0, vector[]));
    test_scenario::return_shared(reg);
    clock.destroy_for_testing();
    transfer::public_transfer(cap, PUBLISHER);
    scenario.end();
}
