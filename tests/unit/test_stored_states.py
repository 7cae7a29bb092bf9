"""The states a product row may hold (tables.products.ProductState, its column's choices) are
the lifecycle's states (rules.lifecycle.State), in the same order: tables/ does not import
rules/, so this test keeps the two lists one."""

from rules.lifecycle import State
from tables.products import ProductState


def test_a_product_row_holds_exactly_the_lifecycle_states():
    assert [(s.name, s.value) for s in ProductState] == [(s.name, s.value) for s in State]


def test_a_stored_state_and_the_lifecycle_state_of_the_same_name_are_equal():
    assert ProductState.GRACE == State.GRACE == "grace"
    assert {ProductState.ACTIVE: 1}[State.ACTIVE] == 1  # the same key either way
