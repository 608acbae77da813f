"""Vote sets: verified votes of one type at one (height, round), tallied by voting power.

Theory of operation: a `VoteSet` keeps each validator's first vote and the power behind
each block id, so the thresholds of the paper are O(1) reads: "2f + 1" is more than two
thirds of the total power, "f + 1" more than one third. The paper counts *messages*: an
equivocator's second, conflicting vote also counts toward the block id it names, and so
does a later one for a block id the vote set was told matters (nil, or the id of a proposal
the machine holds; `add_relevant_block`): otherwise a correct validator that saw the
equivocator's other votes first could never see a polka that its peers saw, and the height
could stall (CometBFT admits such votes through peer "maj23" claims). A validator's vote
counts at most once per block id, and votes for other ids are ignored, which bounds memory.
This is safe: two block ids can both reach more than two thirds only if more than a third
of the power equivocates. The distinct-voter total behind "2f + 1 ⟨∗⟩" and "f + 1" counts
each validator once. The first conflict yields `DuplicateVoteEvidence`. Votes must be
verified before they are added — a vote set checks membership and position by assertion,
not signatures. `HeightVoteSet` holds the prevote and precommit sets of every round of one
height.
"""

from __future__ import annotations

import enum

from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.messages import NIL_BLOCK_ID, Vote
from seoulchain.ledger.types import Height, Round, ValidatorSet, VoteType, VotingPower


class AddVoteOutcome(enum.Enum):
    """What adding a vote to a vote set did."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICTING = "conflicting"  # counted toward its block id, though the validator equivocates
    IGNORED = "ignored"  # a further conflicting vote for a block id of no interest (yet)


class VoteSet:
    """Votes of one type at one (height, round), with the power behind each block id."""

    def __init__(self, validator_set: ValidatorSet, height: Height, round_: Round,
                 vote_type: int, relevant: set[bytes] | None = None) -> None:
        self.validator_set = validator_set
        self.height = height
        self.round = round_
        self.vote_type = vote_type
        self._powers = {member.public_key: member.power for member in validator_set.validators}
        self._votes: dict[bytes, Vote] = {}
        self._conflicting: dict[tuple[bytes, bytes], Vote] = {}
        self._relevant = relevant if relevant is not None else {NIL_BLOCK_ID}
        self._power_by_block: dict[bytes, int] = {}
        self._power = 0
        self._equivocators: set[bytes] = set()

    def add_vote(self, vote: Vote) -> tuple[AddVoteOutcome, DuplicateVoteEvidence | None]:
        """Add a verified vote; return the outcome and evidence on a validator's first conflict."""
        assert (vote.height, vote.round, vote.vote_type) == (
            self.height, self.round, self.vote_type)
        assert vote.validator in self._powers
        existing = self._votes.get(vote.validator)
        key = (vote.validator, vote.block_id)
        if existing is not None and (existing.block_id == vote.block_id
                                     or key in self._conflicting):
            return AddVoteOutcome.DUPLICATE, None
        if existing is not None:
            is_first_conflict = vote.validator not in self._equivocators
            if not is_first_conflict and vote.block_id not in self._relevant:
                return AddVoteOutcome.IGNORED, None
            self._equivocators.add(vote.validator)
            self._conflicting[key] = vote
            self._add_block_power(vote.block_id, self._powers[vote.validator])
            evidence = DuplicateVoteEvidence.create(existing, vote) if is_first_conflict else None
            return AddVoteOutcome.CONFLICTING, evidence
        power = self._powers[vote.validator]
        self._votes[vote.validator] = vote
        self._add_block_power(vote.block_id, power)
        self._power += power
        assert self._power <= self.validator_set.total_power
        return AddVoteOutcome.ADDED, None

    def _add_block_power(self, block_id: bytes, power: int) -> None:
        self._power_by_block[block_id] = self._power_by_block.get(block_id, 0) + power
        assert self._power_by_block[block_id] <= self.validator_set.total_power

    def get_vote(self, validator: bytes) -> Vote | None:
        """Return the counted vote of `validator`, if any."""
        return self._votes.get(validator)

    def get_votes_for(self, block_id: bytes) -> list[Vote]:
        """Return the counted votes for `block_id` (at most one per validator), by key."""
        votes = [vote for vote in self._votes.values() if vote.block_id == block_id]
        votes += [vote for (_, voted), vote in self._conflicting.items() if voted == block_id]
        return sorted(votes, key=lambda vote: vote.validator)

    def get_all_votes(self) -> list[Vote]:
        """Return every counted vote: each validator's first, then first conflicting ones."""
        return [*self._votes.values(), *self._conflicting.values()]

    @property
    def voters(self) -> frozenset[bytes]:
        return frozenset(self._votes)

    @property
    def power(self) -> VotingPower:
        """Return the power of all distinct validators counted, whatever they voted for."""
        return VotingPower(self._power)

    def get_power_for(self, block_id: bytes) -> VotingPower:
        """Return the power of the validators that voted for `block_id` (empty for nil)."""
        return VotingPower(self._power_by_block.get(block_id, 0))

    def has_two_thirds_any(self) -> bool:
        """Return True if more than 2/3 of the power voted, for anything ("2f + 1 ⟨∗⟩")."""
        return self.validator_set.is_quorum(self._power)

    def has_two_thirds_for(self, block_id: bytes) -> bool:
        """Return True if more than 2/3 of the power voted for `block_id`."""
        return self.validator_set.is_quorum(self._power_by_block.get(block_id, 0))

    def has_one_third_any(self) -> bool:
        """Return True if more than 1/3 of the power voted ("f + 1"): one voter is correct."""
        return 3 * self._power > self.validator_set.total_power

    def two_thirds_majority(self) -> bytes | None:
        """Return the block id (empty for nil) with more than 2/3 of the power, if any."""
        for block_id, power in self._power_by_block.items():
            if self.validator_set.is_quorum(power):
                return block_id
        return None


class HeightVoteSet:
    """The prevote and precommit sets of every round of one height, created on first use."""

    def __init__(self, validator_set: ValidatorSet, height: Height) -> None:
        self.validator_set = validator_set
        self.height = height
        self._sets: dict[tuple[Round, int], VoteSet] = {}
        self._relevant: set[bytes] = {NIL_BLOCK_ID}

    def add_relevant_block(self, block_id: bytes) -> None:
        """Count equivocators' votes for `block_id` (a proposal's) from now on, in every round."""
        self._relevant.add(block_id)

    def get(self, round_: Round, vote_type: int) -> VoteSet:
        """Return the vote set for (round, type), empty if no vote arrived yet."""
        key = (round_, vote_type)
        if key not in self._sets:
            self._sets[key] = VoteSet(self.validator_set, self.height, round_, vote_type,
                                      self._relevant)
        return self._sets[key]

    def get_counted_vote(self, round_: Round, vote_type: int, validator: bytes) -> Vote | None:
        """Return the vote of `validator` counted at (round, type), without creating a set."""
        vote_set = self._sets.get((round_, vote_type))
        return None if vote_set is None else vote_set.get_vote(validator)

    def get_round_votes(self, round_: Round) -> list[Vote]:
        """Return the counted prevotes, then precommits, of `round_` (none created)."""
        return [vote for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT)
                if (vote_set := self._sets.get((round_, vote_type))) is not None
                for vote in vote_set.get_all_votes()]

    def prevotes(self, round_: Round) -> VoteSet:
        return self.get(round_, VoteType.PREVOTE)

    def precommits(self, round_: Round) -> VoteSet:
        return self.get(round_, VoteType.PRECOMMIT)

    def add_vote(self, vote: Vote) -> tuple[AddVoteOutcome, DuplicateVoteEvidence | None]:
        """Add a verified vote of this height to its round's set."""
        assert vote.height == self.height
        return self.get(vote.round, vote.vote_type).add_vote(vote)
