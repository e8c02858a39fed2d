"""The ITR consensus rule (docs/architecture.md#itr-consensus), as pure functions."""

import pytest

from annotate.itr.consensus import (
    category_score,
    change_kind,
    item_state,
    pair_code,
    task_majority,
)


def test_category_score_and_codes() -> None:
    assert [category_score(p) for p in [(0, 0), (0, 1), (1, 0), (1, 1)]] == [1, 2, 3, 4]
    assert pair_code((0, 1)) == "01"
    assert change_kind((0, 0), (0, 0)) is None
    assert change_kind((0, 0), (1, 0)) == "text"
    assert change_kind((0, 0), (0, 1)) == "image"
    assert change_kind((0, 1), (1, 0)) == "both"


@pytest.mark.parametrize(
    ("original", "votes", "expected"),
    [(0, [1, 1, 0], 1), (1, [0, 0, 1], 0), (0, [1, 0], 0), (1, [1, 0], 1), (0, [], 0)],
)
def test_task_majority_ties_keep_the_original(original, votes, expected) -> None:
    assert task_majority(original, votes) == expected


def test_state_before_and_after_the_quorum() -> None:
    pending = item_state((0, 0), [], None, 3)
    assert (pending.status, pending.final, pending.proposed, pending.margin) == (
        "pending",
        (0, 0),
        None,
        None,
    )
    # Two votes for a change: in review, the original still stands, but it is disputed.
    two = item_state((0, 0), [(1, 0), (1, 0)], None, 3)
    assert (two.status, two.final, two.disagreement) == ("in_review", (0, 0), True)
    three = item_state((0, 0), [(1, 0), (1, 0), (0, 0)], None, 3)
    assert (three.status, three.proposed, three.final) == ("consensus", (1, 0), (1, 0))
    assert three.margin == pytest.approx(1 / 3)  # the text task: 2 against 1


def test_unanimous_confirmation_is_no_disagreement() -> None:
    state = item_state((1, 1), [(1, 1)] * 3, None, 3)
    assert (state.status, state.final, state.disagreement, state.margin) == (
        "consensus",
        (1, 1),
        False,
        1.0,
    )


def test_tie_at_the_quorum_keeps_the_original_per_task() -> None:
    state = item_state((0, 1), [(1, 0), (0, 0), (1, 1), (0, 1)], None, 4)
    # text: 2 vs 2 -> original 0; image: 2 vs 2 -> original 1
    assert state.proposed == (0, 1)
    assert state.final == (0, 1)
    assert state.disagreement
    assert state.margin == 0


def test_a_decision_overrides_the_consensus() -> None:
    state = item_state((0, 0), [(1, 0)] * 3, (0, 1), 3)
    assert (state.status, state.proposed, state.final) == ("decided", (1, 0), (0, 1))
