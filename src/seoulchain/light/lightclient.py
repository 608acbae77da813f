"""The light client: follow a chain's headers from a trusted root by checking commits only.

Theory of operation (docs/spec/proofs.md §4; the model is CometBFT's light client). A light
client holds a *trusted state*: a height, its block id and time, the validator set that
signed it and the hash of the set for the next height. The root of trust is the genesis
(height 0: the genesis validator set, nothing signed yet) or a header the user trusts by
other means (a checkpoint). A *light block* is what a full node hands out for one height:
the header, the commit that decided it and the validator set named by its
`validators_hash`. The client never executes transactions; it moves its trusted state
forward one light block at a time, by one of two rules:

- **Adjacent** (`untrusted.height == trusted.height + 1`): the header links to the trusted
  one (`prev_block_id`), its `validators_hash` is the trusted `next_validators_hash`, and
  more than 2/3 of its own set's power signed its commit.
- **Skipping** (`untrusted.height > trusted.height + 1`): more than `trust_level` (1/3 by
  default) of the *trusted* set's power is among the commit's signers — so at least one
  honest validator of the trusted set vouches for the header if fewer than 1/3 are faulty —
  and more than 2/3 of the header's own set signed it.

Both rules also check the chain id, that the set hashes to the header's `validators_hash`,
and that time increases. `verify_to` reaches a target height by skipping and, when the
trusted set's overlap with the target's signers is too small (`InsufficientTrust`),
bisects: it fetches the header half-way through the provider callback, reaches that
first, and tries again — at most `BISECTION_STEPS_MAX` fetches.

Fork detection: two light blocks for one height with different block ids, each carrying a
commit of more than 2/3 of its named set, cannot both come from an honest chain. The
client compares every light block it is shown (from a primary or a witness) with those it
has verified, and a conflict that verifies is raised as `ForkDetected`, whose
`ForkEvidence` names both headers and the validators that signed both commits.

There is no trusting period: headers and proofs are meant to verify for decades, so the
model is that a validator key, even after the validator leaves the set, never signs for a
height it did not decide (retired keys are destroyed). A verifier that does not accept this
can demand sequential verification with `trust_level=None`.

Pure and deterministic: no I/O, no clock; the header provider is a callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from seoulchain.consensus.messages import verify_commit
from seoulchain.errors import DecodeError, LocalError, VerificationError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import BlockHeader, Commit, ValidatorSet

# CometBFT's default trust level: more than 1/3 of the trusted power includes at least one
# honest validator when fewer than 1/3 are faulty.
DEFAULT_TRUST_LEVEL = Fraction(1, 3)
# A trust level must leave skipping meaningful and stay below the 2/3 quorum (as CometBFT).
TRUST_LEVEL_MIN = Fraction(1, 3)
TRUST_LEVEL_MAX = Fraction(2, 3)
# Bisection halves the gap each step; 64 steps cover any uint64 height range.
BISECTION_STEPS_MAX = 64
# Light blocks kept by a client for fork checks; a trace from genesis to any height by
# bisection needs far fewer.
VERIFIED_BLOCKS_MAX = 10_000


class InsufficientTrust(VerificationError):
    """Too little of the trusted set signed a non-adjacent header to skip to it."""


@dataclass(frozen=True, slots=True)
class LightBlock:
    """One height as a full node hands it to a light client: header, commit, signing set."""

    header: BlockHeader
    commit: Commit
    validators: ValidatorSet

    @property
    def height(self) -> int:
        return self.header.height

    def block_id(self) -> bytes:
        return self.header.block_id()

    def to_cbor(self) -> list[Any]:
        return [self.header.to_cbor(), self.commit.to_cbor(), self.validators.to_cbor()]


@dataclass(frozen=True, slots=True)
class TrustedState:
    """What the light client trusts: a height and the set that will sign after it."""

    chain_id: str
    height: int
    block_id: bytes
    time_ms: int
    validators: ValidatorSet
    next_validators_hash: bytes

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> TrustedState:
        """Trust height 0: the genesis set signs heights 1 and 2; nothing is signed yet."""
        return cls(genesis.chain_id, 0, b"", genesis.genesis_time_ms, genesis.validators,
                   genesis.validators.hash())

    @classmethod
    def from_light_block(cls, block: LightBlock, chain_id: str) -> TrustedState:
        """Trust a light block given by other means (a checkpoint), after checking its commit."""
        check_light_block(block, chain_id)
        header = block.header
        return cls(chain_id, header.height, block.block_id(), header.time_ms, block.validators,
                   header.next_validators_hash)


@dataclass(frozen=True, slots=True)
class ForkEvidence:
    """Two headers for one height, each with a commit of > 2/3 of its set: a fork."""

    height: int
    first: LightBlock
    second: LightBlock
    common_signers: tuple[bytes, ...]

    def describe(self) -> str:
        signers = ", ".join(key.hex() for key in self.common_signers) or "none"
        return (f"two valid-looking headers at height {self.height}: block "
                f"{self.first.block_id().hex()} and block {self.second.block_id().hex()}; "
                f"validators that signed both: {signers}")


class ForkDetected(VerificationError):
    """A conflicting header for a verified height carries a valid-looking commit."""

    def __init__(self, evidence: ForkEvidence):
        super().__init__(f"fork detected: {evidence.describe()}")
        self.evidence = evidence


LightBlockProvider = Callable[[int], LightBlock]


# --------------------------------------------------------------------------- pure rules


def check_light_block(block: LightBlock, chain_id: str) -> None:
    """Raise unless the light block is self-consistent: its set signed it with > 2/3."""
    if not isinstance(block, LightBlock):
        raise VerificationError(f"expected a LightBlock, got {type(block).__name__}")
    header = block.header
    if header.chain_id != chain_id:
        raise VerificationError(f"header {header.height} is for chain {header.chain_id!r}, "
                                f"not {chain_id!r}")
    if block.validators.hash() != header.validators_hash:
        raise VerificationError(f"the validator set given for height {header.height} does not "
                                "hash to the header's validators_hash")
    verify_commit(chain_id, block.validators, block.commit, block.block_id(), header.height)


def compute_signed_power(validators: ValidatorSet, commit: Commit) -> int:
    """Return the power of `validators` among the commit's signers (signatures checked apart)."""
    powers = {validator.public_key: validator.power for validator in validators.validators}
    return sum(powers.get(sig.validator, 0) for sig in commit.signatures)


def is_trusted_enough(signed_power: int, total_power: int, trust_level: Fraction) -> bool:
    """Return True if `signed_power` is more than `trust_level` of `total_power`."""
    return signed_power * trust_level.denominator > total_power * trust_level.numerator


def check_progress(trusted: TrustedState, untrusted: LightBlock) -> None:
    """Raise unless the untrusted header is for a later height and a later time."""
    header = untrusted.header
    if header.height <= trusted.height:
        raise VerificationError(f"header {header.height} is not above the trusted height "
                                f"{trusted.height}")
    if header.time_ms <= trusted.time_ms:
        raise VerificationError(f"header {header.height} time {header.time_ms} is not after "
                                f"the trusted time {trusted.time_ms}")


def verify_adjacent(trusted: TrustedState, untrusted: LightBlock) -> None:
    """Header h+1: links to h, is signed by the set h named next, with > 2/3 of it."""
    check_progress(trusted, untrusted)
    header = untrusted.header
    if header.height != trusted.height + 1:
        raise LocalError("verify_adjacent needs the header right after the trusted one")
    if header.prev_block_id != trusted.block_id:
        raise VerificationError(f"header {header.height} does not link to the trusted block "
                                f"{trusted.block_id.hex() or '(genesis)'}")
    if header.validators_hash != trusted.next_validators_hash:
        raise VerificationError(f"header {header.height} names validators "
                                f"{header.validators_hash.hex()}, but the trusted header named "
                                f"{trusted.next_validators_hash.hex()} for it")
    check_light_block(untrusted, trusted.chain_id)


def verify_skipping(trusted: TrustedState, untrusted: LightBlock,
                    trust_level: Fraction = DEFAULT_TRUST_LEVEL) -> None:
    """Header h+k, k > 1: > trust_level of the trusted set and > 2/3 of its own set signed it."""
    check_progress(trusted, untrusted)
    if untrusted.height == trusted.height + 1:
        raise LocalError("verify_skipping is for non-adjacent headers; use verify_adjacent")
    check_light_block(untrusted, trusted.chain_id)
    signed = compute_signed_power(trusted.validators, untrusted.commit)
    total = trusted.validators.total_power
    if not is_trusted_enough(signed, total, trust_level):
        raise InsufficientTrust(
            f"header {untrusted.height}: the trusted set of height {trusted.height} holds "
            f"{signed} of {total} power among its signers, not more than {trust_level}")


def verify_light_block(trusted: TrustedState, untrusted: LightBlock,
                       trust_level: Fraction | None = DEFAULT_TRUST_LEVEL) -> TrustedState:
    """Verify `untrusted` from `trusted` (adjacent or skipping) and return the new trust."""
    if untrusted.height == trusted.height + 1:
        verify_adjacent(trusted, untrusted)
    elif trust_level is None:
        raise VerificationError(f"header {untrusted.height} does not follow the trusted height "
                                f"{trusted.height}, and skipping is not allowed")
    else:
        verify_skipping(trusted, untrusted, trust_level)
    header = untrusted.header
    return TrustedState(trusted.chain_id, header.height, untrusted.block_id(), header.time_ms,
                        untrusted.validators, header.next_validators_hash)


def compute_fork_evidence(first: LightBlock, second: LightBlock) -> ForkEvidence | None:
    """Return the evidence two light blocks make if they are for one height and differ.

    The caller has verified both from a common trusted state; this only names what they
    show: both headers, and the validators that signed both commits.
    """
    if first.height != second.height or first.block_id() == second.block_id():
        return None
    signers = {sig.validator for sig in first.commit.signatures}
    common = tuple(sorted(sig.validator for sig in second.commit.signatures
                          if sig.validator in signers))
    return ForkEvidence(first.height, first, second, common)


def require_trust_level(trust_level: Fraction | None) -> None:
    if trust_level is not None and not TRUST_LEVEL_MIN <= trust_level <= TRUST_LEVEL_MAX:
        raise LocalError(f"trust level {trust_level} is outside [{TRUST_LEVEL_MIN}, "
                         f"{TRUST_LEVEL_MAX}]")


# --------------------------------------------------------------------------- the client


@dataclass
class LightClient:
    """Moves a trusted state forward through light blocks, remembering what it verified."""

    trusted: TrustedState
    trust_level: Fraction | None = DEFAULT_TRUST_LEVEL
    verified: dict[int, LightBlock] = field(default_factory=dict)
    # The trusted state each verified block was verified from: a conflicting block for that
    # height must verify from the same state to count as a fork.
    roots: dict[int, TrustedState] = field(default_factory=dict)
    trace: list[LightBlock] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_trust_level(self.trust_level)

    @classmethod
    def from_genesis(cls, genesis: Genesis,
                     trust_level: Fraction | None = DEFAULT_TRUST_LEVEL) -> LightClient:
        return cls(TrustedState.from_genesis(genesis), trust_level)

    def accept(self, block: LightBlock) -> None:
        """Verify `block` from the current trust and move the trust to it."""
        self.check_conflict(block)
        root = self.trusted
        self.trusted = verify_light_block(root, block, self.trust_level)
        self.remember(block, root)

    def remember(self, block: LightBlock, root: TrustedState) -> None:
        self.verified[block.height] = block
        self.roots[block.height] = root
        self.trace.append(block)
        while len(self.verified) > VERIFIED_BLOCKS_MAX:
            oldest = min(self.verified)
            del self.verified[oldest], self.roots[oldest]

    def check_conflict(self, block: LightBlock) -> None:
        """Raise `ForkDetected` if `block` differs from a verified block of its height and
        verifies from the same trusted state; a block that does not verify raises plainly."""
        known = self.verified.get(block.height)
        if known is None or known.block_id() == block.block_id():
            return
        verify_light_block(self.roots[block.height], block, self.trust_level)
        evidence = compute_fork_evidence(known, block)
        assert evidence is not None
        raise ForkDetected(evidence)

    def verify_sequential(self, height: int, provider: LightBlockProvider) -> LightBlock:
        """Verify every header from the trusted height + 1 up to `height`."""
        self.require_target(height)
        while self.trusted.height < height:
            self.accept(fetch(provider, self.trusted.height + 1))
        return self.verified[height]

    def verify_to(self, height: int, provider: LightBlockProvider) -> LightBlock:
        """Verify the header at `height` by skipping, bisecting when trust is insufficient."""
        if self.trust_level is None:
            return self.verify_sequential(height, provider)
        self.require_target(height)
        pending = [fetch(provider, height)]
        fetches = 0
        while pending:
            candidate = pending[-1]
            try:
                self.accept(candidate)
            except InsufficientTrust:
                pivot = (self.trusted.height + candidate.height) // 2
                fetches += 1
                if fetches > BISECTION_STEPS_MAX:
                    raise VerificationError(f"no path of trust to height {height} within "
                                            f"{BISECTION_STEPS_MAX} bisection steps") from None
                pending.append(fetch(provider, pivot))
                continue
            pending.pop()
        return self.verified[height]

    def check_witness(self, height: int, witness: LightBlockProvider) -> None:
        """Compare the verified header at `height` with a witness's; raise on a valid fork.

        The witness's header is verified from the trusted state the verified one was
        verified from, bisecting through the witness as needed. If it verifies and differs,
        that is a fork (`ForkDetected`); if it does not verify, the witness is faulty and the
        plain `VerificationError` says why.
        """
        known = self.verified.get(height)
        if known is None:
            raise LocalError(f"height {height} has not been verified")
        other = fetch(witness, height)
        if other.block_id() == known.block_id():
            return
        replay = LightClient(self.roots[height], self.trust_level)
        replay.verify_to(height, witness)
        evidence = compute_fork_evidence(known, replay.verified[height])
        if evidence is not None:
            raise ForkDetected(evidence)

    def require_target(self, height: int) -> None:
        if height <= self.trusted.height:
            raise LocalError(f"height {height} is not above the trusted height "
                             f"{self.trusted.height}")


def fetch(provider: LightBlockProvider, height: int) -> LightBlock:
    """Call the provider and check it answered for the height asked."""
    try:
        block = provider(height)
    except DecodeError as exc:
        raise VerificationError(f"light block {height} does not decode: {exc}") from exc
    if not isinstance(block, LightBlock):
        raise VerificationError(f"the provider returned no light block for height {height}")
    if block.height != height:
        raise VerificationError(f"asked for height {height}, the provider returned "
                                f"{block.height}")
    return block
