"""Tally: homomorphic sum, partial decryptions and the result, with their refusals."""

from __future__ import annotations

import dataclasses

import pytest
from gmpy2 import mpz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.voting import (
    compute_encrypted_tally,
    compute_partial_decryption,
    compute_result,
    create_ballot,
    parse_election,
    parse_encrypted_tally,
    parse_partial_decryption,
    parse_result,
    parse_trustees,
    verify_ballot,
    verify_partial_decryption,
    verify_result,
)
from seoulchain.voting.errors import BadDecryptionShare, ResultMismatch, VotingUsageError
from seoulchain.voting.tally import compute_discrete_log
from tests.voting.samples import CREDENTIALS, TOOL_RESULT, make_setup, read_tool_archive


def run_election(plaintexts: list[list[list[int]]], voters: list[int]):
    """Cast one ballot per (voter, plaintext), tally, decrypt with both trustees."""
    setup = make_setup()
    ballots = [verify_ballot(setup.election, create_ballot(
        setup.election, CREDENTIALS[voter], plain).raw, setup.credentials)
        for voter, plain in zip(voters, plaintexts, strict=True)]
    tally = compute_encrypted_tally(setup.election, ballots)
    partials = [compute_partial_decryption(setup.election, tally, pair.private_key)
                for pair in setup.trustees]
    return setup, tally, partials


@pytest.fixture(scope="module")
def election_run():
    # Voter 0 votes twice: only the last ballot counts. Voter 1 has weight 2 and votes blank.
    return run_election([[[1, 0], [0, 1, 0, 0]], [[0, 0], [1, 0, 0, 0]], [[0, 1], [0, 1, 1, 0]],
                         [[1, 0], [0, 0, 1, 1]]], [0, 1, 2, 0])


def test_tally_counts_weights_and_only_last_ballots(election_run) -> None:
    setup, tally, partials = election_run
    trustees = [pair.public for pair in setup.trustees]
    result = compute_result(setup.election, tally, trustees, partials)
    assert (tally.num_tallied, tally.total_weight) == (3, 4)
    assert result == ((1, 1), (2, 1, 2, 1))
    verify_result(setup.election, tally, trustees, partials, result)


def test_wrong_decryption_share_is_refused(election_run) -> None:
    setup, tally, partials = election_run
    trustees = [pair.public for pair in setup.trustees]
    with pytest.raises(BadDecryptionShare):
        verify_partial_decryption(setup.election, tally, trustees[1], partials[0])
    factors = [list(row) for row in partials[0].factors]
    factors[0][0] = factors[0][0] * setup.election.group.g % setup.election.group.p
    forged = dataclasses.replace(partials[0], factors=tuple(tuple(row) for row in factors))
    with pytest.raises(BadDecryptionShare):
        compute_result(setup.election, tally, trustees, [forged, partials[1]])
    with pytest.raises(VotingUsageError):
        compute_result(setup.election, tally, trustees, partials[:1])


def test_result_that_does_not_match_the_shares_is_refused(election_run) -> None:
    setup, tally, partials = election_run
    trustees = [pair.public for pair in setup.trustees]
    with pytest.raises(ResultMismatch):
        verify_result(setup.election, tally, trustees, partials, ((1, 1), (2, 1, 2, 2)))
    with pytest.raises(ResultMismatch):
        verify_result(setup.election, tally, trustees, partials, ((1, 1),))


def test_discrete_log_is_bounded() -> None:
    group = make_setup().election.group
    assert compute_discrete_log(group, group.exp_g(mpz(37)), 40) == 37
    with pytest.raises(ResultMismatch):
        compute_discrete_log(group, group.exp_g(mpz(41)), 40)


def test_tool_tally_decryptions_and_result_verify_here() -> None:
    reader = read_tool_archive()
    setup_data = reader.payload(reader.events[0])
    election = parse_election(reader.referenced(setup_data, "election"))
    trustees = parse_trustees(election.group, reader.referenced(setup_data, "trustees"))
    sized = reader.payload(reader.events[5])
    tally = parse_encrypted_tally(election, reader.referenced(sized, "encrypted_tally"), 3, 4)
    partials = [parse_partial_decryption(election, reader.referenced(
        reader.payload(event), "payload")) for event in reader.events[6:8]]
    assert compute_result(election, tally, trustees, partials) == TOOL_RESULT
    verify_result(election, tally, trustees, partials,
                  parse_result(election, reader.payload(reader.events[8])))


choices_q1 = st.sampled_from([[0, 0], [1, 0], [0, 1]])
choices_q2 = st.sampled_from([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(choices_q1, choices_q2), min_size=1, max_size=3))
def test_tally_equals_the_weighted_sum_of_choices(votes) -> None:
    voters = list(range(len(votes)))
    setup, tally, partials = run_election([[q1, q2] for q1, q2 in votes], voters)
    weights = [1, 2, 1]
    expected = tuple(tuple(sum(weights[voter] * votes[voter][index][choice] for voter in voters)
                           for choice in range(len(votes[0][index]))) for index in range(2))
    result = compute_result(setup.election, tally, [pair.public for pair in setup.trustees],
                            partials)
    assert result == expected
