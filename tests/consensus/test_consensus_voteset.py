"""Vote set tallies and thresholds, checked against brute force on random vote streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.messages import Vote
from seoulchain.consensus.voteset import AddVoteOutcome, HeightVoteSet, VoteSet
from seoulchain.ledger.types import Validator, ValidatorSet, VoteType

BLOCK_IDS = [b"", b"\x01" * 32, b"\x02" * 32, b"\x03" * 32]
SIGNATURE = b"\x00" * 64  # vote sets take verified votes; signatures are not their concern


def make_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet.of([Validator(bytes([index + 1]) * 32, power)
                            for index, power in enumerate(powers)])


def make_vote(validator_set: ValidatorSet, index: int, choice: int, *, round_: int = 0,
              vote_type: int = VoteType.PREVOTE, signature: bytes = SIGNATURE) -> Vote:
    key = validator_set.validators[index].public_key
    return Vote(vote_type, 1, round_, BLOCK_IDS[choice], key, signature)


POWERS = st.lists(st.integers(1, 50), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(POWERS, st.data())
def test_tally_counts_distinct_voters_and_equivocators_relevant_votes(
        powers: list[int], data: st.DataObject) -> None:
    validator_set = make_set(powers)
    stream = data.draw(st.lists(st.tuples(st.integers(0, len(powers) - 1), st.integers(0, 3)),
                                max_size=40))
    vote_set = VoteSet(validator_set, 1, 0, VoteType.PREVOTE)  # only nil (choice 0) relevant
    first: dict[int, int] = {}
    counted: dict[int, set[int]] = {}
    equivocators: set[int] = set()
    for index, choice in stream:
        outcome, evidence = vote_set.add_vote(make_vote(validator_set, index, choice))
        if index not in first:
            first[index] = choice
            counted[index] = {choice}
            assert outcome is AddVoteOutcome.ADDED and evidence is None
        elif choice in counted[index]:
            assert outcome is AddVoteOutcome.DUPLICATE and evidence is None
        elif index in equivocators and choice != 0:
            assert outcome is AddVoteOutcome.IGNORED and evidence is None
        else:
            assert outcome is AddVoteOutcome.CONFLICTING
            assert (evidence is not None) == (index not in equivocators)
            counted[index].add(choice)
            equivocators.add(index)
    total = validator_set.total_power
    power = sum(validator_set.validators[index].power for index in first)
    assert vote_set.power == power
    assert vote_set.has_two_thirds_any() == (3 * power > 2 * total)
    assert vote_set.has_one_third_any() == (3 * power > total)
    # The paper counts messages: an equivocator's first conflicting vote counts too, and any
    # later one for a relevant block id (here nil), once per block id.
    by_choice = {choice: sum(validator_set.validators[i].power for i, choices in counted.items()
                             if choice in choices) for choice in range(4)}
    for choice, choice_power in by_choice.items():
        assert vote_set.get_power_for(BLOCK_IDS[choice]) == choice_power
        assert vote_set.has_two_thirds_for(BLOCK_IDS[choice]) == (3 * choice_power > 2 * total)
    winners = [BLOCK_IDS[c] for c, p in by_choice.items() if 3 * p > 2 * total]
    # Two winners need more than a third of the power to equivocate (beyond the model).
    majority = vote_set.two_thirds_majority()
    assert majority in winners if winners else majority is None
    if len(winners) > 1:
        assert 3 * sum(validator_set.validators[i].power for i in equivocators) > total


def test_two_thirds_is_strictly_more_than_two_thirds() -> None:
    """voteset: 2 of 3 equal validators is not a quorum; 3 of 4 is (n=4, f=1)."""
    three = make_set([1, 1, 1])
    vote_set = VoteSet(three, 1, 0, VoteType.PRECOMMIT)
    for index in (0, 1):
        vote_set.add_vote(make_vote(three, index, 1, vote_type=VoteType.PRECOMMIT))
    assert vote_set.two_thirds_majority() is None and vote_set.has_one_third_any()
    four = make_set([1, 1, 1, 1])
    vote_set = VoteSet(four, 1, 0, VoteType.PREVOTE)
    for index in (0, 1, 2):
        vote_set.add_vote(make_vote(four, index, 0))
    assert vote_set.two_thirds_majority() == b""  # a nil polka is a majority for b""


def test_same_vote_with_another_signature_is_a_duplicate_not_evidence() -> None:
    validator_set = make_set([1, 1])
    vote_set = VoteSet(validator_set, 1, 0, VoteType.PREVOTE)
    vote_set.add_vote(make_vote(validator_set, 0, 1))
    outcome, evidence = vote_set.add_vote(make_vote(validator_set, 0, 1, signature=b"\x05" * 64))
    assert outcome is AddVoteOutcome.DUPLICATE and evidence is None


def test_height_vote_set_separates_rounds_and_types() -> None:
    validator_set = make_set([1, 1, 1])
    votes = HeightVoteSet(validator_set, 1)
    votes.add_vote(make_vote(validator_set, 0, 1, round_=2))
    votes.add_vote(make_vote(validator_set, 0, 2, round_=2, vote_type=VoteType.PRECOMMIT))
    assert votes.prevotes(2).get_power_for(BLOCK_IDS[1]) == 1
    assert votes.precommits(2).get_power_for(BLOCK_IDS[2]) == 1
    assert votes.prevotes(1).power == 0
    key = validator_set.validators[0].public_key
    assert votes.get_counted_vote(5, VoteType.PREVOTE, key) is None
    assert votes.get_counted_vote(2, VoteType.PREVOTE, key).block_id == BLOCK_IDS[1]
