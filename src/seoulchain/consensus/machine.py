"""The Tendermint consensus algorithm as a pure, deterministic state machine.

Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(arXiv:1807.04938); every rule below is a short method whose docstring is the paper's rule
with its line numbers. No sockets, threads, clocks, randomness or files: the machine only
turns events into actions, so the node and the fault simulator run the very same code.

How to drive it
---------------
    safety = SafetyRules(signing_key, chain_id, store)       # store: durable in a node
    machine = ConsensusMachine(ConsensusConfig(chain_id), safety)
    actions = machine.on_event(StartHeight(height, validator_set, last_commit))

Feed every event to `on_event` and carry out the returned actions in order:

- `BroadcastProposal` / `BroadcastVote`: send `.proposal.encode()` / `.vote.encode()` to
  every peer. The machine has already counted its own message; do not feed it back
  (if you do, it is dropped as a duplicate).
- `ScheduleTimeout(kind, h, r, duration_ms)`: after `duration_ms`, feed
  `TimeoutFired(kind, h, r)`. Never cancel: stale timeouts are ignored by the machine.
- `RequestBlock(h, r, last_commit)`: we are the proposer; build a block for height h and
  feed `ProposalValueReady(h, r, block)`. That block is taken as valid.
- `RequestValidation(h, block)`: check the block (the application's process_proposal) and
  feed `ValidationResult(h, block.block_id(), is_valid)`. Until then, rules that need
  `valid(v)` wait.
- `CommitBlock(block, commit)`: the height is decided (lines 49-54); `commit` verifies with
  `verify_commit`. Execute and store the block, then feed `StartHeight(h + 1, next set,
  commit)` whenever ready (the pause is CometBFT's timeout_commit; it is the driver's).
- `ReportEvidence(evidence)`: keep the `DuplicateVoteEvidence` for a future block.

Empty blocks: with `ConsensusConfig(create_empty_blocks=False)`, round 0 of each height
after the first waits (`machine.is_waiting_for_txs`) instead of proposing: the driver
feeds `TxsAvailable(h)` when its mempool holds transactions, and the wait also ends after
`create_empty_blocks_interval_ms` (a `ScheduleTimeout` of kind `WAIT_FOR_TXS`; 0: never).
A waiting validator still takes the round's proposal and votes on it as usual, so one whose
own mempool is empty follows a proposer that has transactions.

Peer messages arrive as raw bytes (`ProposalReceived`, `VoteReceived`). A message that is
malformed, unsigned or wrongly signed, from an unknown validator, for an old height or
round budget, or a duplicate, is dropped and counted in `machine.dropped[reason]` (the
`DropReason` names); it never raises and never changes the state. Messages for the next
height are kept (within `FUTURE_HEIGHT_MESSAGES_MAX` / `FUTURE_HEIGHT_BYTES_MAX`) and
processed at its `StartHeight`. Each validator may occupy at most
`VALIDATOR_FUTURE_ROUNDS_MAX` rounds above ours. Misuse by the driver (a `StartHeight` that
does not move forward, a built block for another height) raises `LocalError`.

Signatures come only from `SafetyRules`, which durably records what it is about to sign
before signing and refuses conflicts; a refusal means "do not send" and is counted in
`machine.refused_signatures`, the state machine moving on as if the message were lost.

Crash recovery: write each event to the WAL (`encode_event`) *before* `on_event`, and
each own message as the matching `ProposalReceived`/`VoteReceived` event before sending
it. After a restart, build a machine with the same signing store and replay the WAL's
events in order, carrying out `ScheduleTimeout`, `RequestBlock` and `RequestValidation`
again (stale ones are harmless) and skipping `CommitBlock` for stored heights. Safety
rules refuse to re-sign anything but the last signed message, so the own messages in the
WAL are what restores the votes — and hence the locks — the node had before the crash.

`ConsensusConfig(canary_ignore_lock=True)` makes lines 23 and 29 ignore the lock: a
deliberately unsafe validator, for proving that the simulator's checkers catch violations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from seoulchain.consensus.events import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    Event,
    ProposalReceived,
    ProposalValueReady,
    ReportEvidence,
    RequestBlock,
    RequestValidation,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    TxsAvailable,
    ValidationResult,
    VoteReceived,
)
from seoulchain.consensus.messages import (
    NIL_BLOCK_ID,
    NO_ROUND,
    PROPOSAL_BYTES_MAX,
    InvalidSignatureError,
    Proposal,
    Step,
    Vote,
)
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import SafetyRules, SigningRefused
from seoulchain.consensus.voteset import AddVoteOutcome, HeightVoteSet
from seoulchain.errors import DecodeError, LocalError, VerificationError
from seoulchain.ledger.types import (
    VALIDATORS_MAX,
    Block,
    Commit,
    Height,
    Round,
    ValidatorSet,
    VoteType,
)

# Default timeouts are CometBFT's defaults (config.toml [consensus]): a round's timeout is
# base + delta · round, so that it eventually exceeds the network's delay bound.
TIMEOUT_PROPOSE_MS = 3000
TIMEOUT_PROPOSE_DELTA_MS = 500
TIMEOUT_PREVOTE_MS = 1000
TIMEOUT_PREVOTE_DELTA_MS = 500
TIMEOUT_PRECOMMIT_MS = 1000
TIMEOUT_PRECOMMIT_DELTA_MS = 500
# No delay we plan for exceeds ten minutes; the cap keeps timer arithmetic bounded at huge rounds.
TIMEOUT_MS_MAX = 10 * 60 * 1000
# The longest proof-of-life interval: an idle chain still shows it is alive once a day.
CREATE_EMPTY_BLOCKS_INTERVAL_MS_MAX = 24 * 60 * 60 * 1000
# Rounds above ours that one validator's messages may occupy; CometBFT allows a peer two
# "catch-up" rounds. Bounds memory against a validator flooding future rounds.
VALIDATOR_FUTURE_ROUNDS_MAX = 2
# Next-height messages kept until its StartHeight: a proposal and two votes per validator
# for a couple of rounds; beyond this, peers' gossip re-sends.
FUTURE_HEIGHT_MESSAGES_MAX = 6 * VALIDATORS_MAX
FUTURE_HEIGHT_BYTES_MAX = 2 * PROPOSAL_BYTES_MAX
# Upon-rules that may fire for one event: each firing advances the step, the round or a
# "first time" flag, so a handful suffices; more means a rule failed to change the state.
RULE_FIRINGS_MAX = 32


class DropReason:
    """Why an input was dropped: the keys of `ConsensusMachine.dropped`."""

    MALFORMED = "malformed"
    NOT_STARTED = "not_started"
    STALE_HEIGHT = "stale_height"
    FUTURE_HEIGHT = "future_height"
    FUTURE_BUFFER_FULL = "future_buffer_full"
    ALREADY_DECIDED = "already_decided"
    UNKNOWN_VALIDATOR = "unknown_validator"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PROPOSAL = "invalid_proposal"
    FUTURE_ROUND_BUDGET = "future_round_budget"
    DUPLICATE = "duplicate"
    CONFLICTING_VOTE = "conflicting_vote"
    CONFLICTING_PROPOSAL = "conflicting_proposal"
    IGNORED_CONFLICT = "ignored_conflict"
    STALE_EVENT = "stale_event"
    UNREQUESTED = "unrequested"
    # Dropped for now only: the same message may be taken later (a round reached, a buffer
    # emptied), so a driver that filters repeats must let a re-send of it through.
    RETRYABLE = (FUTURE_ROUND_BUDGET, FUTURE_BUFFER_FULL, IGNORED_CONFLICT)


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    """Chain id, timeouts (base + delta · round), empty-block policy and the canary switch.

    With `create_empty_blocks` false, round 0 of every height but the first waits for
    `TxsAvailable` before proposing (the proposer) or starting its propose timeout (the
    others), or for `create_empty_blocks_interval_ms` if it is not 0 (CometBFT's
    create_empty_blocks and create_empty_blocks_interval, a proof of life for an idle chain).
    """

    chain_id: str
    timeout_propose_ms: int = TIMEOUT_PROPOSE_MS
    timeout_propose_delta_ms: int = TIMEOUT_PROPOSE_DELTA_MS
    timeout_prevote_ms: int = TIMEOUT_PREVOTE_MS
    timeout_prevote_delta_ms: int = TIMEOUT_PREVOTE_DELTA_MS
    timeout_precommit_ms: int = TIMEOUT_PRECOMMIT_MS
    timeout_precommit_delta_ms: int = TIMEOUT_PRECOMMIT_DELTA_MS
    canary_ignore_lock: bool = False
    create_empty_blocks: bool = True
    create_empty_blocks_interval_ms: int = 0

    def __post_init__(self) -> None:
        interval = self.create_empty_blocks_interval_ms
        if type(interval) is not int or not 0 <= interval <= CREATE_EMPTY_BLOCKS_INTERVAL_MS_MAX:
            raise LocalError(f"create_empty_blocks_interval_ms must be an integer from 0 to "
                             f"{CREATE_EMPTY_BLOCKS_INTERVAL_MS_MAX}, got {interval!r}")

    @property
    def is_waiting_for_txs(self) -> bool:
        """True if round 0 waits for transactions (no empty block at once)."""
        return not self.create_empty_blocks

    def compute_timeout_ms(self, kind: TimeoutKind, round_: Round) -> int:
        """Return timeout<kind>(round) = base + delta · round, capped at TIMEOUT_MS_MAX."""
        base, delta = {
            TimeoutKind.PROPOSE: (self.timeout_propose_ms, self.timeout_propose_delta_ms),
            TimeoutKind.PREVOTE: (self.timeout_prevote_ms, self.timeout_prevote_delta_ms),
            TimeoutKind.PRECOMMIT: (self.timeout_precommit_ms, self.timeout_precommit_delta_ms),
        }[kind]
        return min(base + delta * round_, TIMEOUT_MS_MAX)


@dataclass(frozen=True, slots=True)
class MachineState:
    """A snapshot of the algorithm's variables (h_p, round_p, step_p, locks, decision)."""

    height: Height
    round: Round
    step: Step
    locked_round: Round
    locked_block_id: bytes | None
    valid_round: Round
    valid_block_id: bytes | None
    is_decided: bool
    is_waiting_for_txs: bool = False


def is_acceptable_fresh(is_valid: bool, locked_round: Round, locked_block_id: bytes | None,
                        block_id: bytes) -> bool:
    """Line 23: valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v)."""
    return is_valid and (locked_round == NO_ROUND or locked_block_id == block_id)


def is_acceptable_with_pol(is_valid: bool, locked_round: Round, locked_block_id: bytes | None,
                           block_id: bytes, pol_round: Round) -> bool:
    """Line 29: valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v)."""
    return is_valid and (locked_round <= pol_round or locked_block_id == block_id)


class ConsensusMachine:
    """One validator's (or observer's) Tendermint state machine: events in, actions out."""

    def __init__(self, config: ConsensusConfig, safety: SafetyRules) -> None:
        if config.chain_id != safety.chain_id:
            raise LocalError("consensus config and safety rules are for different chains")
        self.config = config
        self.dropped: Counter[str] = Counter()
        self.refused_signatures = 0
        self._safety = safety
        self._height = Height(0)
        self._validator_set: ValidatorSet | None = None
        self._future: dict[tuple[object, ...], Proposal | Vote] = {}
        self._future_bytes = 0
        self._handlers: dict[type, Callable[..., list[Action]]] = {
            StartHeight: self._on_start_height,
            ProposalReceived: self._on_proposal_received,
            VoteReceived: self._on_vote_received,
            TimeoutFired: self._on_timeout_fired,
            ValidationResult: self._on_validation_result,
            ProposalValueReady: self._on_proposal_value_ready,
            TxsAvailable: self._on_txs_available,
        }
        self._rules: tuple[Callable[[], list[Action] | None], ...] = (
            self._on_commit_quorum, self._on_round_skip, self._on_proposal_fresh,
            self._on_proposal_with_pol, self._on_polka_for_proposal, self._on_polka_nil,
            self._on_prevote_quorum_any, self._on_precommit_quorum_any)
        self._reset_height(Height(0), None)

    # ----------------------------------------------------------------------- public API

    @property
    def public_key(self) -> bytes:
        return self._safety.public_key

    @property
    def height(self) -> Height:
        return self._height

    @property
    def round(self) -> Round:
        return self._round

    @property
    def step(self) -> Step:
        return self._step

    @property
    def state(self) -> MachineState:
        """Return a snapshot of the algorithm's variables."""
        return MachineState(self._height, self._round, self._step, self._locked_round,
                            None if self._locked is None else self._locked.block_id(),
                            self._valid_round,
                            None if self._valid is None else self._valid.block_id(),
                            self._decided, self.is_waiting_for_txs)

    @property
    def is_waiting_for_txs(self) -> bool:
        """True while round 0 waits for `TxsAvailable` (or the proof-of-life timeout)."""
        return (self._waiting_for_txs and not self._decided and self._round == 0
                and self._step == Step.PROPOSE)

    @property
    def retryable_drops(self) -> int:
        """Return how many inputs were dropped for a reason in `DropReason.RETRYABLE`."""
        return sum(self.dropped[reason] for reason in DropReason.RETRYABLE)

    def get_round_votes(self, round_: Round) -> list[Vote]:
        """Return the votes counted at (h_p, round_), prevotes then precommits, for relaying:
        the paper assumes every message a correct process receives reaches all the others.
        """
        return [] if self._votes is None or self._decided else self._votes.get_round_votes(round_)

    def on_event(self, event: Event) -> list[Action]:
        """Apply one event; return the actions the driver must carry out, in order."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise LocalError(f"not a consensus event: {type(event).__name__}")
        actions = handler(event)
        actions.extend(self._run_rules())
        self._check_invariants()
        return actions

    # ----------------------------------------------------------------------- heights

    def _reset_height(self, height: Height, validator_set: ValidatorSet | None) -> None:
        """Line 53: reset locks, valid value and the message log for a new height."""
        self._height = height
        self._validator_set = validator_set
        self._powers = {} if validator_set is None else {
            member.public_key: member.power for member in validator_set.validators}
        self._last_commit: Commit | None = None
        self._round = Round(0)
        self._step = Step.PROPOSE
        self._locked: Block | None = None
        self._locked_round = NO_ROUND
        self._valid: Block | None = None
        self._valid_round = NO_ROUND
        self._decided = False
        self._awaiting_value = False
        self._waiting_for_txs = False
        self._proposals: dict[Round, Proposal] = {}
        self._proposers: dict[Round, bytes] = {}
        self._votes = None if validator_set is None else HeightVoteSet(validator_set, height)
        self._validity: dict[bytes, bool] = {}
        self._requested: set[bytes] = set()
        self._fired: set[tuple[int, Round]] = set()
        self._senders: dict[Round, set[bytes]] = {}

    def _on_start_height(self, event: StartHeight) -> list[Action]:
        """Lines 10 and 52-54: move to a new height and StartRound(0)."""
        if event.height <= self._height:
            raise LocalError(f"StartHeight({event.height}) does not follow {self._height}")
        if event.last_commit is not None and event.last_commit.height != event.height - 1:
            raise LocalError("StartHeight's last commit is not for the previous height")
        self._reset_height(event.height, event.validator_set)
        self._last_commit = event.last_commit
        buffered = [message for message in self._future.values()
                    if message.height == event.height]
        if len(buffered) < len(self._future):
            self.dropped[DropReason.STALE_HEIGHT] += len(self._future) - len(buffered)
        self._future, self._future_bytes = {}, 0
        actions = self._enter_round(Round(0))
        for message in buffered:
            if isinstance(message, Proposal):
                actions.extend(self._on_proposal(message))
            else:
                actions.extend(self._on_vote(message))
        return actions

    # ----------------------------------------------------------------------- messages in

    def _on_proposal_received(self, event: ProposalReceived) -> list[Action]:
        try:
            proposal = Proposal.decode(event.data)
        except DecodeError:
            return self._drop(DropReason.MALFORMED)
        if not self._is_current_height(proposal, ("proposal", proposal.round), len(event.data)):
            return []
        return self._on_proposal(proposal)

    def _on_vote_received(self, event: VoteReceived) -> list[Action]:
        try:
            vote = Vote.decode(event.data)
        except DecodeError:
            return self._drop(DropReason.MALFORMED)
        key = ("vote", vote.validator, vote.round, vote.vote_type)
        if not self._is_current_height(vote, key, len(event.data)):
            return []
        return self._on_vote(vote)

    def _is_current_height(self, message: Proposal | Vote, key: tuple[object, ...],
                           size: int) -> bool:
        """Return True if `message` is for the undecided current height; else keep or drop it."""
        if self._height == 0:
            self._drop(DropReason.NOT_STARTED)
        elif message.height < self._height:
            self._drop(DropReason.STALE_HEIGHT)
        elif message.height > self._height:
            self._keep_for_next_height(message, key, size)
        elif self._decided:
            self._drop(DropReason.ALREADY_DECIDED)
        else:
            return True
        return False

    def _keep_for_next_height(self, message: Proposal | Vote, key: tuple[object, ...],
                              size: int) -> None:
        """Buffer a message for height + 1, within the buffer's bounds."""
        if message.height != self._height + 1:
            self._drop(DropReason.FUTURE_HEIGHT)
        elif key in self._future and not self._is_first_conflict(message, key):
            self._drop(DropReason.DUPLICATE)
        elif (len(self._future) >= FUTURE_HEIGHT_MESSAGES_MAX
              or self._future_bytes + size > FUTURE_HEIGHT_BYTES_MAX):
            self._drop(DropReason.FUTURE_BUFFER_FULL)
        else:
            if key in self._future:
                key = (*key, "conflicting")
            self._future[key] = message
            self._future_bytes += size

    def _is_first_conflict(self, message: Proposal | Vote, key: tuple[object, ...]) -> bool:
        """Return True if `message` is a vote conflicting with the one kept under `key`, and
        no conflicting vote is kept yet: the vote set will count it (an equivocator's first
        conflicting vote counts toward its block id), so dropping it here would hide from us
        a polka our peers see, and the driver would never hand it to us again.
        """
        kept = self._future[key]
        return (isinstance(message, Vote) and isinstance(kept, Vote)
                and kept.block_id != message.block_id
                and (*key, "conflicting") not in self._future)

    def _on_proposal(self, proposal: Proposal) -> list[Action]:
        """Check and store a current-height proposal; ask the application to validate it."""
        assert self._validator_set is not None
        existing = self._proposals.get(proposal.round)
        if existing == proposal:
            return self._drop(DropReason.DUPLICATE)
        proposer = self._get_proposer(proposal.round)
        if not self._is_within_round_budget(proposer, proposal.round):
            return self._drop(DropReason.FUTURE_ROUND_BUDGET)
        try:
            proposal.verify(self.config.chain_id, self._validator_set)
        except InvalidSignatureError:
            return self._drop(DropReason.INVALID_SIGNATURE)
        except VerificationError:
            return self._drop(DropReason.INVALID_PROPOSAL)
        if existing is not None:
            return self._drop(DropReason.CONFLICTING_PROPOSAL)
        self._proposals[proposal.round] = proposal
        self._votes.add_relevant_block(proposal.block_id)
        self._note_sender(proposer, proposal.round)
        return self._request_validation(proposal.block)

    def _on_vote(self, vote: Vote) -> list[Action]:
        """Check and count a current-height vote; report evidence on equivocation."""
        assert self._validator_set is not None and self._votes is not None
        if vote.validator not in self._powers:
            return self._drop(DropReason.UNKNOWN_VALIDATOR)
        counted = self._votes.get_counted_vote(vote.round, vote.vote_type, vote.validator)
        if counted is not None and counted.block_id == vote.block_id:
            return self._drop(DropReason.DUPLICATE)
        if not self._is_within_round_budget(vote.validator, vote.round):
            return self._drop(DropReason.FUTURE_ROUND_BUDGET)
        try:
            vote.verify(self.config.chain_id, self._validator_set)
        except VerificationError:
            return self._drop(DropReason.INVALID_SIGNATURE)
        outcome, evidence = self._votes.add_vote(vote)
        if outcome is AddVoteOutcome.DUPLICATE:
            return self._drop(DropReason.DUPLICATE)
        if outcome is AddVoteOutcome.IGNORED:  # may count once its block is proposed
            return self._drop(DropReason.IGNORED_CONFLICT)
        if outcome is AddVoteOutcome.CONFLICTING:
            self._drop(DropReason.CONFLICTING_VOTE)
            return [] if evidence is None else [ReportEvidence(evidence)]
        assert outcome is AddVoteOutcome.ADDED
        self._note_sender(vote.validator, vote.round)
        return []

    def _is_within_round_budget(self, sender: bytes, round_: Round) -> bool:
        """Return True unless `sender` already fills its quota of rounds above ours."""
        if round_ <= self._round:
            return True
        rounds = {other for other, senders in self._senders.items()
                  if other > self._round and sender in senders}
        return round_ in rounds or len(rounds) < VALIDATOR_FUTURE_ROUNDS_MAX

    def _note_sender(self, sender: bytes, round_: Round) -> None:
        self._senders.setdefault(round_, set()).add(sender)

    def _request_validation(self, block: Block) -> list[Action]:
        block_id = block.block_id()
        if block_id in self._validity or block_id in self._requested:
            return []
        self._requested.add(block_id)
        return [RequestValidation(self._height, block)]

    # ----------------------------------------------------------------------- application

    def _on_validation_result(self, event: ValidationResult) -> list[Action]:
        if event.height != self._height:
            return self._drop(DropReason.STALE_EVENT)
        if event.block_id not in self._requested:
            return self._drop(DropReason.UNREQUESTED)
        self._requested.discard(event.block_id)
        self._validity[event.block_id] = event.is_valid
        return []

    def _on_txs_available(self, event: TxsAvailable) -> list[Action]:
        """Transactions wait in the mempool: round 0 stops waiting and proposes."""
        if event.height != self._height or not self.is_waiting_for_txs:
            return self._drop(DropReason.STALE_EVENT)
        return self._end_wait_for_txs()

    def _end_wait_for_txs(self) -> list[Action]:
        """Leave round 0's wait for transactions: propose, or start the propose timeout."""
        self._waiting_for_txs = False
        return self._enter_propose()

    def _on_proposal_value_ready(self, event: ProposalValueReady) -> list[Action]:
        """Line 18-19: proposal ← getValue(); broadcast ⟨PROPOSAL, h_p, round_p, proposal, −1⟩."""
        if ((event.height, event.round) != (self._height, self._round)
                or not self._awaiting_value or self._decided):
            return self._drop(DropReason.STALE_EVENT)
        header = event.block.header
        if header.height != self._height or header.chain_id != self.config.chain_id:
            raise LocalError("the block built for us is for another height or chain")
        # Only a twin's proposal for our round can have given us a valid value meanwhile.
        assert self._valid is None or self._round in self._proposals
        self._awaiting_value = False
        return self._propose(event.block, NO_ROUND)

    # ----------------------------------------------------------------------- rounds

    def _enter_round(self, round_: Round) -> list[Action]:
        """Lines 11-21: StartRound(round): round_p ← round; step_p ← propose; then propose
        (`_enter_propose`), unless round 0 waits for transactions first (`_should_wait_for_txs`).
        """
        self._round = round_
        self._step = Step.PROPOSE
        self._awaiting_value = False
        self._waiting_for_txs = self._should_wait_for_txs()
        if not self._waiting_for_txs:
            return self._enter_propose()
        interval_ms = self.config.create_empty_blocks_interval_ms
        if interval_ms == 0:
            return []
        return [ScheduleTimeout(TimeoutKind.WAIT_FOR_TXS, self._height, round_, interval_ms)]

    def _should_wait_for_txs(self) -> bool:
        """Return True if this round waits for transactions before proposing: round 0 with
        create_empty_blocks off, except at the chain's first height (as CometBFT, whose first
        block is never held back) — the height whose StartHeight carries no last commit.
        Later rounds never wait: a round > 0 means the network is already at work.
        """
        return (self.config.is_waiting_for_txs and self._round == 0
                and self._last_commit is not None)

    def _enter_propose(self) -> list[Action]:
        """Lines 14-21: if proposer(h_p, round_p) = p then propose validValue_p if ≠ nil else
        getValue(), with validRound_p; else schedule OnTimeoutPropose(h_p, round_p) after
        timeoutPropose(round_p).
        """
        round_ = self._round
        if not self._is_proposer(round_):
            return [self._schedule(TimeoutKind.PROPOSE)]
        if self._valid is not None:
            return self._propose(self._valid, self._valid_round)
        self._awaiting_value = True
        return [RequestBlock(self._height, round_, self._last_commit)]

    def _propose(self, block: Block, pol_round: Round) -> list[Action]:
        """Sign and broadcast ⟨PROPOSAL, h_p, round_p, block, pol_round⟩; count it as received."""
        self._validity[block.block_id()] = True  # we built it, or it is validValue_p
        try:
            proposal = self._safety.sign_proposal(self._height, self._round, pol_round, block)
        except SigningRefused:
            self.refused_signatures += 1
            return []
        existing = self._proposals.get(self._round)
        if existing is not None and existing != proposal:
            # Our key signed another proposal for this round that we did not sign: a twin
            # (a second process with our key). As in the paper with the honest code run
            # twice, ours still goes out; here it is just a conflicting proposal.
            self._drop(DropReason.CONFLICTING_PROPOSAL)
            return [BroadcastProposal(proposal)]
        self._proposals[self._round] = proposal
        assert self._votes is not None
        self._votes.add_relevant_block(proposal.block_id)
        self._note_sender(self.public_key, self._round)
        return [BroadcastProposal(proposal)]

    def _enter_prevote(self, block_id: bytes) -> list[Action]:
        """broadcast ⟨PREVOTE, h_p, round_p, block_id⟩; step_p ← prevote."""
        self._step = Step.PREVOTE
        return self._cast_vote(VoteType.PREVOTE, block_id)

    def _enter_precommit(self, block_id: bytes) -> list[Action]:
        """broadcast ⟨PRECOMMIT, h_p, round_p, block_id⟩; step_p ← precommit."""
        self._step = Step.PRECOMMIT
        return self._cast_vote(VoteType.PRECOMMIT, block_id)

    def _cast_vote(self, vote_type: int, block_id: bytes) -> list[Action]:
        """Sign our vote through the safety rules, count it, and broadcast it."""
        if self.public_key not in self._powers:
            return []
        try:
            vote = self._safety.sign_vote(vote_type, self._height, self._round, block_id)
        except SigningRefused:
            self.refused_signatures += 1
            return []
        assert self._votes is not None
        signed = self._safety.last_signed
        assert signed is None or signed.position == (self._height, self._round, vote_type)
        outcome, evidence = self._votes.add_vote(vote)
        actions: list[Action] = [BroadcastVote(vote)]
        if outcome is not AddVoteOutcome.ADDED:
            # The safety rules signed nothing else at this step, so the vote we hold is a
            # twin's (a second process with our key): ours is a conflicting vote, as any
            # peer would see it, and goes out all the same.
            self._drop(DropReason.CONFLICTING_VOTE)
            return actions if evidence is None else [*actions, ReportEvidence(evidence)]
        self._note_sender(self.public_key, self._round)
        return actions

    def _enter_decision(self, proposal: Proposal) -> list[Action]:
        """Lines 51-53: decision_p[h_p] = v; reset locks; emit the block with its commit."""
        assert self._votes is not None and self._validator_set is not None
        block_id = proposal.block_id
        precommits = self._votes.precommits(proposal.round).get_votes_for(block_id)
        commit = Commit(self._height, proposal.round, block_id,
                        tuple(vote.to_commit_sig() for vote in precommits))
        assert self._validator_set.is_quorum(sum(self._powers[v.validator] for v in precommits))
        self._decided = True
        self._locked, self._locked_round = None, NO_ROUND
        self._valid, self._valid_round = None, NO_ROUND
        return [CommitBlock(proposal.block, commit)]

    # ----------------------------------------------------------------------- upon rules

    def _run_rules(self) -> list[Action]:
        """Fire enabled upon-rules, one at a time, until none is enabled."""
        actions: list[Action] = []
        for _ in range(RULE_FIRINGS_MAX):
            if self._height == 0 or self._decided:
                return actions
            for rule in self._rules:
                fired = rule()
                if fired is not None:
                    actions.extend(fired)
                    break
            else:
                return actions
        raise AssertionError("upon-rules kept firing without changing the state")

    def _on_proposal_fresh(self) -> list[Action] | None:
        """Lines 22-27: upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p)
        while step_p = propose do: if valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v)
        then broadcast ⟨PREVOTE, h_p, round_p, id(v)⟩ else broadcast ⟨PREVOTE, h_p, round_p,
        nil⟩; step_p ← prevote.
        """
        proposal = self._proposals.get(self._round)
        if self._step != Step.PROPOSE or proposal is None or proposal.pol_round != NO_ROUND:
            return None
        is_valid = self._validity.get(proposal.block_id)
        if is_valid is None:
            return None
        accept = is_valid if self.config.canary_ignore_lock else is_acceptable_fresh(
            is_valid, self._locked_round, self._locked_block_id, proposal.block_id)
        return self._enter_prevote(proposal.block_id if accept else NIL_BLOCK_ID)

    def _on_proposal_with_pol(self) -> list[Action] | None:
        """Lines 28-33: upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p) AND
        2f + 1 ⟨PREVOTE, h_p, vr, id(v)⟩ while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p) do:
        if valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v) then broadcast ⟨PREVOTE, h_p,
        round_p, id(v)⟩ else broadcast ⟨PREVOTE, h_p, round_p, nil⟩; step_p ← prevote.
        """
        assert self._votes is not None
        proposal = self._proposals.get(self._round)
        if (self._step != Step.PROPOSE or proposal is None
                or not 0 <= proposal.pol_round < self._round):
            return None
        if not self._votes.prevotes(proposal.pol_round).has_two_thirds_for(proposal.block_id):
            return None
        is_valid = self._validity.get(proposal.block_id)
        if is_valid is None:
            return None
        accept = is_valid if self.config.canary_ignore_lock else is_acceptable_with_pol(
            is_valid, self._locked_round, self._locked_block_id, proposal.block_id,
            proposal.pol_round)
        return self._enter_prevote(proposal.block_id if accept else NIL_BLOCK_ID)

    def _on_prevote_quorum_any(self) -> list[Action] | None:
        """Lines 34-35: upon 2f + 1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote for the
        first time do schedule OnTimeoutPrevote(h_p, round_p) after timeoutPrevote(round_p).
        """
        assert self._votes is not None
        if (self._step != Step.PREVOTE or (34, self._round) in self._fired
                or not self._votes.prevotes(self._round).has_two_thirds_any()):
            return None
        self._fired.add((34, self._round))
        return [self._schedule(TimeoutKind.PREVOTE)]

    def _on_polka_for_proposal(self) -> list[Action] | None:
        """Lines 36-43: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p) AND
        2f + 1 ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧ step_p ≥ prevote for the first
        time do: if step_p = prevote then lockedValue_p ← v; lockedRound_p ← round_p;
        broadcast ⟨PRECOMMIT, h_p, round_p, id(v)⟩; step_p ← precommit. validValue_p ← v;
        validRound_p ← round_p.
        """
        assert self._votes is not None
        proposal = self._proposals.get(self._round)
        if proposal is None or self._step < Step.PREVOTE or (36, self._round) in self._fired:
            return None
        block_id = proposal.block_id
        if (not self._validity.get(block_id)
                or not self._votes.prevotes(self._round).has_two_thirds_for(block_id)):
            return None
        self._fired.add((36, self._round))
        actions: list[Action] = []
        if self._step == Step.PREVOTE:
            self._locked, self._locked_round = proposal.block, self._round
            actions = self._enter_precommit(block_id)
        self._valid, self._valid_round = proposal.block, self._round
        return actions

    def _on_polka_nil(self) -> list[Action] | None:
        """Lines 44-46: upon 2f + 1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote do
        broadcast ⟨PRECOMMIT, h_p, round_p, nil⟩; step_p ← precommit.
        """
        assert self._votes is not None
        if (self._step != Step.PREVOTE
                or not self._votes.prevotes(self._round).has_two_thirds_for(NIL_BLOCK_ID)):
            return None
        return self._enter_precommit(NIL_BLOCK_ID)

    def _on_precommit_quorum_any(self) -> list[Action] | None:
        """Lines 47-48: upon 2f + 1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time do
        schedule OnTimeoutPrecommit(h_p, round_p) after timeoutPrecommit(round_p).
        """
        assert self._votes is not None
        if ((47, self._round) in self._fired
                or not self._votes.precommits(self._round).has_two_thirds_any()):
            return None
        self._fired.add((47, self._round))
        return [self._schedule(TimeoutKind.PRECOMMIT)]

    def _on_commit_quorum(self) -> list[Action] | None:
        """Lines 49-54: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ from proposer(h_p, r) AND 2f + 1
        ⟨PRECOMMIT, h_p, r, id(v)⟩ while decision_p[h_p] = nil do: if valid(v) then
        decision_p[h_p] = v; h_p ← h_p + 1; reset; StartRound(0) (on the next StartHeight).
        """
        assert self._votes is not None
        for round_, proposal in sorted(self._proposals.items()):
            block_id = proposal.block_id
            if (self._validity.get(block_id)
                    and self._votes.precommits(round_).has_two_thirds_for(block_id)):
                return self._enter_decision(proposal)
        return None

    def _on_round_skip(self) -> list[Action] | None:
        """Lines 55-56: upon f + 1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p do
        StartRound(round) (to the highest such round).
        """
        rounds = [round_ for round_, senders in self._senders.items()
                  if round_ > self._round and self._is_one_third(senders)]
        if not rounds:
            return None
        return self._enter_round(max(rounds))

    # ----------------------------------------------------------------------- timeouts

    def _on_timeout_fired(self, event: TimeoutFired) -> list[Action]:
        if event.height != self._height or event.round != self._round or self._decided:
            return []
        return {
            TimeoutKind.PROPOSE: self._on_timeout_propose,
            TimeoutKind.PREVOTE: self._on_timeout_prevote,
            TimeoutKind.PRECOMMIT: self._on_timeout_precommit,
            TimeoutKind.WAIT_FOR_TXS: self._on_timeout_wait_for_txs,
        }[event.kind]()

    def _on_timeout_propose(self) -> list[Action]:
        """Lines 57-60: OnTimeoutPropose(height, round): if height = h_p ∧ round = round_p ∧
        step_p = propose then broadcast ⟨PREVOTE, h_p, round_p, nil⟩; step_p ← prevote.
        """
        if self._step != Step.PROPOSE:
            return []
        return self._enter_prevote(NIL_BLOCK_ID)

    def _on_timeout_wait_for_txs(self) -> list[Action]:
        """The proof-of-life interval passed without transactions: propose all the same (an
        empty block), unless the round has moved on meanwhile (a peer's proposal came).
        """
        if not self.is_waiting_for_txs:
            return []
        return self._end_wait_for_txs()

    def _on_timeout_prevote(self) -> list[Action]:
        """Lines 61-64: OnTimeoutPrevote(height, round): if height = h_p ∧ round = round_p ∧
        step_p = prevote then broadcast ⟨PRECOMMIT, h_p, round_p, nil⟩; step_p ← precommit.
        """
        if self._step != Step.PREVOTE:
            return []
        return self._enter_precommit(NIL_BLOCK_ID)

    def _on_timeout_precommit(self) -> list[Action]:
        """Lines 65-67: OnTimeoutPrecommit(height, round): if height = h_p ∧ round = round_p
        then StartRound(round_p + 1).
        """
        return self._enter_round(Round(self._round + 1))

    # ----------------------------------------------------------------------- helpers

    @property
    def _locked_block_id(self) -> bytes | None:
        return None if self._locked is None else self._locked.block_id()

    def _get_proposer(self, round_: Round) -> bytes:
        """Return proposer(h_p, round), cached per height."""
        assert self._validator_set is not None
        if round_ not in self._proposers:
            self._proposers[round_] = compute_proposer(
                self._validator_set, self._height, round_).public_key
        return self._proposers[round_]

    def _is_proposer(self, round_: Round) -> bool:
        return self.public_key in self._powers and self._get_proposer(round_) == self.public_key

    def _is_one_third(self, senders: set[bytes]) -> bool:
        """Return True if `senders` hold more than 1/3 of the power ("f + 1")."""
        assert self._validator_set is not None
        power = sum(self._powers[sender] for sender in senders)
        return 3 * power > self._validator_set.total_power

    def _schedule(self, kind: TimeoutKind) -> ScheduleTimeout:
        return ScheduleTimeout(kind, self._height, self._round,
                               self.config.compute_timeout_ms(kind, self._round))

    def _drop(self, reason: str) -> list[Action]:
        self.dropped[reason] += 1
        return []

    def _check_invariants(self) -> None:
        """Assert the relations between the algorithm's variables that every rule preserves."""
        assert (self._locked is None) == (self._locked_round == NO_ROUND)
        assert (self._valid is None) == (self._valid_round == NO_ROUND)
        assert self._locked_round <= self._valid_round <= self._round
        # A twin's proposal for our round may move us on while our own block is being built.
        assert (not self._awaiting_value or self._step == Step.PROPOSE
                or self._round in self._proposals)
        assert not (self._waiting_for_txs and self._awaiting_value)
        assert len(self._future) <= FUTURE_HEIGHT_MESSAGES_MAX
