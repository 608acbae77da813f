"""Governance (`gov`): the agencies decide together, k of n, what no single key may change.

Theory of operation: the consortium is state in this service's namespace — the member
agencies (a name, client keys, a validator key if the agency runs one) and the threshold
k, both taken from genesis (`agencies`, `governance.threshold`). A member proposes an
action with a deadline height; the proposal is its proposer's first approval. Other
members approve (once each) or withdraw their approval. The approval that brings the
distinct approving members to k applies the action in that same transaction, in the block
that reaches k; if the action can no longer be applied (say another proposal already left
too few members), that approval is refused with the reason and nothing changes. A proposal
whose deadline passed without k approvals is expired: every query reports it so from the
first height after the deadline, no approval is accepted any more, and `close` (anyone may
call it) records the outcome on chain. Nothing runs at block end, so every outcome comes
from a transaction and is deterministic.

Approvals count only while their member is one: removing a member takes its approvals off
every open proposal. Lowering k passes nothing by itself: a proposal that already has the
new k approvals passes with its next approval. Removing a member removes its validator in
the same action, or nothing if that would empty the validator set. Everything is bounded:
open proposals (in all and per member), a deadline's distance, members, and the roles
governance grants one key.

Actions: add or remove a member, change k, grant or revoke a role, set a validator's power
(0 removes it), set a chain parameter, schedule a service upgrade. They are checked when
proposed and again when applied, through the platform's privileged context methods
(`roles`, `validators`, `params`, `upgrades`), which only this service declares.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from seoulchain.errors import LocalError
from seoulchain.execution.service import (
    AUTH_NAMESPACE,
    PRIVILEGE_PARAMS,
    PRIVILEGE_ROLES,
    PRIVILEGE_UPGRADES,
    PRIVILEGE_VALIDATORS,
    VALIDATOR_POWER_MAX,
    HexBytes,
    QueryArgs,
    Service,
    ServiceError,
    StrictArgs,
    TxContext,
    check_role_grant,
    get_role_history,
    held_role_at,
    query,
    tx_method,
)
from seoulchain.execution.state import ServiceState
from seoulchain.ledger.genesis import AGENCY_NAME_PATTERN, ROLE_CHARS_MAX, Genesis
from seoulchain.ledger.types import PUBLIC_KEY_BYTES, VALIDATOR_NAME_CHARS_MAX

THRESHOLD_KEY = b"threshold"
MEMBERS_KEY = b"members"
NEXT_ID_KEY = b"next_id"
MEMBER_KEY_PREFIX = b"member/"
SIGNER_KEY_PREFIX = b"key/"
PROPOSAL_KEY_PREFIX = b"proposal/"
PARAM_KEY_PREFIX = b"param/"
PARAMS_KEY = b"params"
# The open proposals as [id, proposer, deadline_height], in the order they were made.
OPEN_KEY = b"open"
# The roles governance granted each key (and did not revoke), by key.
ROLES_KEY_PREFIX = b"roles/"
# A proposal stays open at most this many blocks: about a week at one block a second, long
# enough for every agency's office to review it, short enough that stale ones expire.
VOTING_PERIOD_BLOCKS_MAX = 7 * 24 * 3600
# Proposals one `proposals` query lists (newest first); a page stays a few hundred KiB.
PROPOSALS_PAGE_MAX = 100
# Members of the consortium: as many as genesis may name (ledger/genesis.py AGENCIES_MAX).
MEMBERS_MAX = 1024
# Proposals open at once, in all: agencies decide a few matters a week, so this is months of
# business; removing a member rewrites each open proposal, so it also bounds that transaction.
OPEN_PROPOSALS_MAX = 128
# Proposals one member may have open at once: enough for an agency's own agenda, and no
# member can fill the whole queue alone (the total holds eight members' worth).
OPEN_PROPOSALS_PER_MEMBER_MAX = 16
# Roles governance may grant one key: a key serves one office in a few services, each with a
# role or two (genesis roles are bounded by the genesis file's size).
ROLES_PER_KEY_MAX = 16

Key = Annotated[bytes, Field(min_length=PUBLIC_KEY_BYTES, max_length=PUBLIC_KEY_BYTES)]
MemberName = Annotated[str, StringConstraints(pattern=AGENCY_NAME_PATTERN.pattern)]
ActionKind = Literal["add_member", "remove_member", "set_threshold", "grant_role",
                     "revoke_role", "set_validator", "set_param", "upgrade"]
# The fields each action takes (beyond `kind`); the others must be absent.
ACTION_FIELDS: dict[str, frozenset[str]] = {
    "add_member": frozenset({"member", "public_key", "validator_key", "power"}),
    "remove_member": frozenset({"member"}),
    "set_threshold": frozenset({"threshold"}),
    "grant_role": frozenset({"role", "public_key"}),
    "revoke_role": frozenset({"role", "public_key"}),
    "set_validator": frozenset({"public_key", "power", "name"}),
    "set_param": frozenset({"param", "value"}),
    "upgrade": frozenset({"service", "version", "height"}),
}
ACTION_REQUIRED: dict[str, frozenset[str]] = {
    "add_member": frozenset({"member", "public_key"}),
    "remove_member": frozenset({"member"}),
    "set_threshold": frozenset({"threshold"}),
    "grant_role": frozenset({"role", "public_key"}),
    "revoke_role": frozenset({"role", "public_key"}),
    "set_validator": frozenset({"public_key", "power"}),
    "set_param": frozenset({"param", "value"}),
    "upgrade": frozenset({"service", "version", "height"}),
}


class ProposeArgs(StrictArgs):
    kind: ActionKind
    deadline_height: Annotated[int, Field(ge=1)]
    member: MemberName | None = None
    public_key: Key | None = None
    validator_key: Key | None = None
    power: Annotated[int, Field(ge=0, le=VALIDATOR_POWER_MAX)] | None = None
    name: Annotated[str, StringConstraints(max_length=VALIDATOR_NAME_CHARS_MAX)] | None = None
    threshold: Annotated[int, Field(ge=1, le=MEMBERS_MAX)] | None = None
    role: Annotated[str, StringConstraints(max_length=64)] | None = None
    param: Annotated[str, StringConstraints(max_length=128)] | None = None
    value: bool | int | str | None = None
    service: Annotated[str, StringConstraints(max_length=64)] | None = None
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None

    def get_action(self) -> dict[str, Any]:
        """Return the action as stored: its kind and the fields it uses."""
        fields = self.model_dump(exclude_none=True)
        given = set(fields) - {"kind", "deadline_height"}
        extra = sorted(given - ACTION_FIELDS[self.kind])
        if extra:
            raise ServiceError(f"a {self.kind} proposal takes no {', '.join(extra)}")
        missing = sorted(ACTION_REQUIRED[self.kind] - given)
        if missing:
            raise ServiceError(f"a {self.kind} proposal needs {', '.join(missing)}")
        return {"kind": self.kind, **{name: fields[name] for name in sorted(given)}}


class ProposalArgs(StrictArgs):
    proposal: Annotated[int, Field(ge=1)]


class ProposalQuery(QueryArgs):
    proposal: Annotated[int, Field(ge=1)]


class ProposalsQuery(QueryArgs):
    status: Literal["all", "open", "passed", "expired"] = "all"
    limit: Annotated[int, Field(ge=1, le=PROPOSALS_PAGE_MAX)] = 20
    before: Annotated[int, Field(ge=1)] | None = None


class NoArgs(QueryArgs):
    pass


class RoleHistoryQuery(QueryArgs):
    role: Annotated[str, StringConstraints(max_length=ROLE_CHARS_MAX)]
    public_key: Annotated[HexBytes, Field(min_length=PUBLIC_KEY_BYTES,
                                          max_length=PUBLIC_KEY_BYTES)]
    height: Annotated[int, Field(ge=0)] | None = None


def compute_proposal_key(proposal_id: int) -> bytes:
    return PROPOSAL_KEY_PREFIX + proposal_id.to_bytes(8, "big")


def get_status(record: dict[str, Any], height: int) -> str:
    """Return a proposal's status at `height`: open, passed, or expired (closed or not)."""
    if record["status"] == "open" and height > record["deadline_height"]:
        return "expired"
    return record["status"]


class GovService(Service):
    """The agencies' k-of-n governance of members, roles, validators, parameters, versions."""

    name = "gov"
    version = "1.0.0"
    privileges = frozenset({PRIVILEGE_ROLES, PRIVILEGE_VALIDATORS, PRIVILEGE_PARAMS,
                            PRIVILEGE_UPGRADES})

    def init_genesis(self, state: ServiceState, genesis: Genesis) -> None:
        """Take the genesis agencies as the first members and genesis' threshold as k.

        An agency runs the genesis validator whose key is its own client key or, failing
        that, the one that bears its name (a devnet names validator i after agency i).
        """
        validator_keys = {validator.public_key for validator in genesis.validators.validators}
        by_name = {validator.name: validator.public_key
                   for validator in genesis.validators.validators if validator.name}
        names = []
        for agency in genesis.agencies:
            validator = (agency.public_key if agency.public_key in validator_keys
                         else by_name.get(agency.name))
            self.write_member(state, {"name": agency.name, "keys": [agency.public_key],
                                      "validator": validator, "since_height": 0})
            names.append(agency.name)
        state.set(MEMBERS_KEY, sorted(names))
        state.set(THRESHOLD_KEY, genesis.threshold)
        state.set(NEXT_ID_KEY, 1)

    # ------------------------------------------------------------------ members

    def write_member(self, state: ServiceState, member: dict[str, Any]) -> None:
        state.set(MEMBER_KEY_PREFIX + member["name"].encode(), member)
        for key in member["keys"]:
            state.set(SIGNER_KEY_PREFIX + key, member["name"])

    def get_member_of(self, ctx: TxContext) -> str:
        """Return the name of the member agency that signed the tx, or refuse."""
        name = ctx.state.get(SIGNER_KEY_PREFIX + ctx.signer)
        if name is None:
            raise ServiceError(f"signer {ctx.signer.hex()} is not a key of a member agency; "
                               "only members propose, approve and withdraw")
        return name

    def get_proposal(self, ctx: TxContext, proposal_id: int) -> dict[str, Any]:
        record = ctx.state.get(compute_proposal_key(proposal_id))
        if record is None:
            raise ServiceError(f"there is no proposal {proposal_id}")
        return record

    def require_open(self, ctx: TxContext, record: dict[str, Any]) -> None:
        status = get_status(record, ctx.height)
        if status == "expired":
            raise ServiceError(f"proposal {record['id']} expired at height "
                               f"{record['deadline_height']}; this is height {ctx.height}")
        if status != "open":
            raise ServiceError(f"proposal {record['id']} is already {status}")

    # ------------------------------------------------------------------ methods

    @tx_method(args=ProposeArgs, roles=None)
    def propose(self, ctx: TxContext, args: ProposeArgs) -> None:
        """Propose an action with a deadline height; the proposal is the proposer's approval."""
        member = self.get_member_of(ctx)
        if not ctx.height < args.deadline_height <= ctx.height + VOTING_PERIOD_BLOCKS_MAX:
            raise ServiceError(f"the deadline must be after this height ({ctx.height}) and at "
                               f"most {VOTING_PERIOD_BLOCKS_MAX} blocks ahead (height "
                               f"{ctx.height + VOTING_PERIOD_BLOCKS_MAX}), not "
                               f"{args.deadline_height}")
        action = args.get_action()
        self.check_action(ctx, action)
        proposal_id = ctx.state.get(NEXT_ID_KEY)
        ctx.state.set(NEXT_ID_KEY, proposal_id + 1)
        self.add_open(ctx, proposal_id, member, args.deadline_height)
        record = {"id": proposal_id, "action": action, "proposer": member,
                  "proposer_key": ctx.signer, "proposed_height": ctx.height,
                  "deadline_height": args.deadline_height, "approvals": [],
                  "status": "open", "closed_height": None, "tx_hash": ctx.tx_hash}
        ctx.emit("gov.proposed", proposal=proposal_id, kind=action["kind"], proposer=member,
                 deadline_height=args.deadline_height)
        self.add_approval(ctx, record, member)

    @tx_method(args=ProposalArgs, roles=None)
    def approve(self, ctx: TxContext, args: ProposalArgs) -> None:
        """Approve an open proposal; the k-th distinct member's approval applies it."""
        member = self.get_member_of(ctx)
        record = self.get_proposal(ctx, args.proposal)
        self.require_open(ctx, record)
        if any(name == member for name, _ in record["approvals"]):
            raise ServiceError(f"member {member} has already approved proposal {args.proposal}")
        self.add_approval(ctx, record, member)

    @tx_method(args=ProposalArgs, roles=None)
    def withdraw(self, ctx: TxContext, args: ProposalArgs) -> None:
        """Withdraw the signer's member agency's approval of an open proposal."""
        member = self.get_member_of(ctx)
        record = self.get_proposal(ctx, args.proposal)
        self.require_open(ctx, record)
        approvals = [item for item in record["approvals"] if item[0] != member]
        if len(approvals) == len(record["approvals"]):
            raise ServiceError(f"member {member} has not approved proposal {args.proposal}")
        record["approvals"] = approvals
        ctx.state.set(compute_proposal_key(args.proposal), record)
        ctx.emit("gov.withdrawn", proposal=args.proposal, member=member,
                 approvals=len(approvals))

    @tx_method(args=ProposalArgs, roles=None)
    def close(self, ctx: TxContext, args: ProposalArgs) -> None:
        """Record that a proposal past its deadline expired (any signer may call it)."""
        record = self.get_proposal(ctx, args.proposal)
        if get_status(record, ctx.height) != "expired" or record["status"] != "open":
            raise ServiceError(f"proposal {args.proposal} is {get_status(record, ctx.height)}"
                               f"{' (closed)' if record['status'] != 'open' else ''}; only an "
                               "open proposal past its deadline can be closed")
        record["status"] = "expired"
        record["closed_height"] = ctx.height
        self.remove_open(ctx, args.proposal)
        ctx.state.set(compute_proposal_key(args.proposal), record)
        ctx.emit("gov.expired", proposal=args.proposal,
                 deadline_height=record["deadline_height"])

    def add_approval(self, ctx: TxContext, record: dict[str, Any], member: str) -> None:
        """Record `member`'s approval, applying the action when k current members approve.

        The action is checked whole before any of it is written; a refusal fails the tx, so
        the approval, the action and its events are all discarded together.
        """
        record["approvals"].append([member, ctx.height])
        members = set(ctx.state.get(MEMBERS_KEY))
        count = len({name for name, _ in record["approvals"] if name in members})
        ctx.emit("gov.approved", proposal=record["id"], member=member, approvals=count)
        if count >= ctx.state.get(THRESHOLD_KEY):
            self.remove_open(ctx, record["id"])
            try:
                self.check_action(ctx, record["action"])
                self.apply_action(ctx, record["action"])
            except ServiceError as exc:
                raise ServiceError(f"proposal {record['id']} reached its threshold but cannot "
                                   f"be applied: {exc}") from exc
            record["status"] = "passed"
            record["closed_height"] = ctx.height
            ctx.emit("gov.passed", proposal=record["id"], kind=record["action"]["kind"])
        ctx.state.set(compute_proposal_key(record["id"]), record)

    # ------------------------------------------------------------------ open proposals

    def get_open(self, ctx: TxContext) -> list[list[Any]]:
        """Return the open proposals [id, proposer, deadline] whose deadline is not past."""
        return [entry for entry in ctx.state.get(OPEN_KEY) or [] if entry[2] >= ctx.height]

    def add_open(self, ctx: TxContext, proposal_id: int, member: str, deadline: int) -> None:
        """Count a new open proposal, refusing it beyond the limits in all and per member."""
        entries = self.get_open(ctx)
        if len(entries) >= OPEN_PROPOSALS_MAX:
            raise ServiceError(f"{len(entries)} proposals are open, the most at once "
                               f"({OPEN_PROPOSALS_MAX}); wait for some to pass or expire")
        own = sum(1 for entry in entries if entry[1] == member)
        if own >= OPEN_PROPOSALS_PER_MEMBER_MAX:
            raise ServiceError(f"member {member} has {own} proposals open, the most one member "
                               f"may ({OPEN_PROPOSALS_PER_MEMBER_MAX}); wait for some to pass "
                               "or expire")
        ctx.state.set(OPEN_KEY, [*entries, [proposal_id, member, deadline]])

    def remove_open(self, ctx: TxContext, proposal_id: int) -> None:
        """Stop counting a proposal that passed or was closed."""
        ctx.state.set(OPEN_KEY, [entry for entry in self.get_open(ctx)
                                 if entry[0] != proposal_id])

    def drop_approvals(self, ctx: TxContext, member: str) -> int:
        """Take a departing member's approvals off every open proposal; return how many."""
        dropped = 0
        for proposal_id, _, _ in self.get_open(ctx):
            record = ctx.state.get(compute_proposal_key(proposal_id))
            approvals = [item for item in record["approvals"] if item[0] != member]
            if len(approvals) != len(record["approvals"]):
                record["approvals"] = approvals
                ctx.state.set(compute_proposal_key(proposal_id), record)
                dropped += 1
        return dropped

    # ------------------------------------------------------------------ actions

    def check_action(self, ctx: TxContext, action: dict[str, Any]) -> None:
        """Refuse an action that could not be applied to the state as it stands."""
        self.run_action(ctx, action, apply=False)

    def apply_action(self, ctx: TxContext, action: dict[str, Any]) -> None:
        self.run_action(ctx, action, apply=True)

    def run_action(self, ctx: TxContext, action: dict[str, Any], apply: bool) -> None:
        """Check (and with `apply`, carry out) one action; platform refusals become ours."""
        handler = getattr(self, f"action_{action['kind']}")
        fields = {name: value for name, value in action.items() if name != "kind"}
        try:
            handler(ctx, apply, **fields)
        except LocalError as exc:  # the platform refused: an unknown parameter, ...
            raise ServiceError(str(exc)) from exc

    def action_add_member(self, ctx: TxContext, apply: bool, member: str, public_key: bytes,
                          validator_key: bytes | None = None, power: int | None = None) -> None:
        names = ctx.state.get(MEMBERS_KEY)
        if member in names:
            raise ServiceError(f"{member} is already a member")
        if ctx.state.has(SIGNER_KEY_PREFIX + public_key):
            raise ServiceError(f"key {public_key.hex()} already belongs to a member")
        if len(names) >= MEMBERS_MAX:
            raise ServiceError(f"the consortium has its maximum of {MEMBERS_MAX} members")
        if (validator_key is None) != (power is None) or power == 0:
            raise ServiceError("a member's validator needs both validator_key and a power "
                               "of at least 1")
        if validator_key is not None:
            holder = self.find_validator_member(ctx, validator_key)
            if holder is not None:
                raise ServiceError(f"validator {validator_key.hex()} is member {holder}'s")
            self.update_validator(ctx, apply, validator_key, power or 0, member)
        if apply:
            self.write_member(ctx.state, {"name": member, "keys": [public_key],
                                          "validator": validator_key,
                                          "since_height": ctx.height})
            ctx.state.set(MEMBERS_KEY, sorted([*names, member]))
            ctx.emit("gov.member_added", member=member, public_key=public_key)

    def action_remove_member(self, ctx: TxContext, apply: bool, member: str) -> None:
        names = ctx.state.get(MEMBERS_KEY)
        if member not in names:
            raise ServiceError(f"{member} is not a member")
        threshold = ctx.state.get(THRESHOLD_KEY)
        if len(names) - 1 < threshold:
            raise ServiceError(f"removing {member} would leave {len(names) - 1} members, fewer "
                               f"than the threshold k = {threshold}; lower k first")
        record = ctx.state.get(MEMBER_KEY_PREFIX + member.encode())
        if record["validator"] is not None:  # the member's validator leaves with it
            self.update_validator(ctx, apply, record["validator"], 0, member)
        if apply:
            ctx.state.delete(MEMBER_KEY_PREFIX + member.encode())
            for key in record["keys"]:
                ctx.state.delete(SIGNER_KEY_PREFIX + key)
            ctx.state.set(MEMBERS_KEY, [name for name in names if name != member])
            dropped = self.drop_approvals(ctx, member)
            ctx.emit("gov.member_removed", member=member, approvals_dropped=dropped)

    def find_validator_member(self, ctx: TxContext, validator_key: bytes) -> str | None:
        """Return the member whose validator `validator_key` is, if any."""
        for name in ctx.state.get(MEMBERS_KEY):
            if ctx.state.get(MEMBER_KEY_PREFIX + name.encode())["validator"] == validator_key:
                return name
        return None

    def action_set_threshold(self, ctx: TxContext, apply: bool, threshold: int) -> None:
        members = len(ctx.state.get(MEMBERS_KEY))
        if not 1 <= threshold <= members:
            raise ServiceError(f"the threshold must be from 1 to {members} (the number of "
                               f"members), not {threshold}")
        if apply:
            ctx.state.set(THRESHOLD_KEY, threshold)
            ctx.emit("gov.threshold_changed", threshold=threshold)

    def action_grant_role(self, ctx: TxContext, apply: bool, role: str,
                          public_key: bytes) -> None:
        check_role_grant(role, public_key)
        if ctx.has_role(public_key, role):
            raise ServiceError(f"key {public_key.hex()} already holds {role}")
        granted = ctx.state.get(ROLES_KEY_PREFIX + public_key) or []
        if len(granted) >= ROLES_PER_KEY_MAX:
            raise ServiceError(f"key {public_key.hex()} holds {len(granted)} roles granted by "
                               f"governance, the most one key may ({ROLES_PER_KEY_MAX}); "
                               "revoke one first")
        if apply:
            ctx.grant_role(role, public_key)
            ctx.state.set(ROLES_KEY_PREFIX + public_key, sorted([*granted, role]))
            ctx.emit("gov.role_granted", role=role, public_key=public_key)

    def action_revoke_role(self, ctx: TxContext, apply: bool, role: str,
                           public_key: bytes) -> None:
        check_role_grant(role, public_key)
        if not ctx.has_role(public_key, role):
            raise ServiceError(f"key {public_key.hex()} does not hold {role}")
        if apply:
            ctx.revoke_role(role, public_key)
            granted = [name for name in ctx.state.get(ROLES_KEY_PREFIX + public_key) or []
                       if name != role]
            if granted:
                ctx.state.set(ROLES_KEY_PREFIX + public_key, granted)
            else:
                ctx.state.delete(ROLES_KEY_PREFIX + public_key)
            ctx.emit("gov.role_revoked", role=role, public_key=public_key)

    def action_set_validator(self, ctx: TxContext, apply: bool, public_key: bytes, power: int,
                             name: str = "") -> None:
        self.update_validator(ctx, apply, public_key, power, name)

    def update_validator(self, ctx: TxContext, apply: bool, public_key: bytes, power: int,
                         name: str) -> None:
        """Request (or, when checking, try on a copy) a validator update for h+2."""
        if apply:
            ctx.request_validator_update(public_key, power, name)
            ctx.emit("gov.validator_changed", public_key=public_key, power=power,
                     effective_height=ctx.height + 2)
            return
        saved = dict(ctx.validator_updates)
        try:
            ctx.request_validator_update(public_key, power, name)
        finally:
            ctx.validator_updates.clear()
            ctx.validator_updates.update(saved)

    def action_set_param(self, ctx: TxContext, apply: bool, param: str,
                         value: bool | int | str) -> None:
        ctx.check_param(param, value)
        if apply:
            ctx.set_param(param, value)
            names = ctx.state.get(PARAMS_KEY) or []
            if param not in names:
                ctx.state.set(PARAMS_KEY, sorted([*names, param]))
            ctx.state.set(PARAM_KEY_PREFIX + param.encode(),
                          {"name": param, "value": value, "height": ctx.height})
            ctx.emit("gov.param_set", param=param, value=value)

    def action_upgrade(self, ctx: TxContext, apply: bool, service: str, version: str,
                       height: int) -> None:
        ctx.check_upgrade(service, version, height)
        if apply:
            ctx.schedule_upgrade(service, version, height)
            ctx.emit("gov.upgrade_scheduled", service=service, version=version, height=height)

    # ------------------------------------------------------------------ queries

    @query(args=ProposalQuery)
    def proposal(self, state: ServiceState, args: ProposalQuery) -> dict[str, Any] | None:
        """Return one proposal: its action, approvals with heights, status and outcome."""
        record = state.get(compute_proposal_key(args.proposal))
        return None if record is None else describe_proposal(record, get_height(state))

    @query(args=ProposalsQuery)
    def proposals(self, state: ServiceState, args: ProposalsQuery) -> list[dict[str, Any]]:
        """Return proposals, newest first, optionally only those of one status."""
        height = get_height(state)
        newest = state.get(NEXT_ID_KEY) - 1
        proposal_id = newest if args.before is None else min(newest, args.before - 1)
        found: list[dict[str, Any]] = []
        # Bounded: a page is at most PROPOSALS_PAGE_MAX matches out of 50 pages of records.
        scanned = 0
        while proposal_id >= 1 and len(found) < args.limit and \
                scanned < PROPOSALS_PAGE_MAX * 50:
            record = describe_proposal(state.get(compute_proposal_key(proposal_id)), height)
            if args.status in ("all", record["status"]):
                found.append(record)
            proposal_id -= 1
            scanned += 1
        return found

    @query(args=NoArgs)
    def members(self, state: ServiceState, args: NoArgs) -> dict[str, Any]:
        """Return the member agencies (keys as hex) and the threshold k."""
        members = []
        for name in state.get(MEMBERS_KEY) or []:
            record = state.get(MEMBER_KEY_PREFIX + name.encode())
            members.append({"name": name, "keys": [key.hex() for key in record["keys"]],
                            "validator": None if record["validator"] is None
                            else record["validator"].hex(),
                            "since_height": record["since_height"]})
        return {"threshold": state.get(THRESHOLD_KEY), "members": members}

    @query(args=RoleHistoryQuery)
    def role_history(self, state: ServiceState, args: RoleHistoryQuery) -> dict[str, Any]:
        """Return a key's periods of holding a role and whether it held it at `height`."""
        auth = ServiceState(state.overlay, AUTH_NAMESPACE)
        periods = get_role_history(auth, args.role, args.public_key)
        tip = get_height(state)
        if args.height is not None and args.height > tip:
            raise LocalError(f"height {args.height} is past the latest committed height "
                             f"{tip}: whether the key holds the role then is not known yet")
        height = tip if args.height is None else args.height
        return {"role": args.role, "public_key": args.public_key.hex(), "height": height,
                "held": held_role_at(periods, height),
                "periods": [{"granted_height": granted, "revoked_height": revoked}
                            for granted, revoked in periods]}

    @query(args=NoArgs)
    def parameters(self, state: ServiceState, args: NoArgs) -> list[dict[str, Any]]:
        """Return the chain parameters set by governance, with the height of each change."""
        return [state.get(PARAM_KEY_PREFIX + name.encode())
                for name in state.get(PARAMS_KEY) or []]


def get_height(state: ServiceState) -> int:
    """Return the committed height a query reads at (the store behind the state's cache)."""
    reader: Any = state.overlay
    while not hasattr(reader, "get_tip") and hasattr(reader, "base"):
        reader = reader.base
    tip = reader.get_tip() if hasattr(reader, "get_tip") else None
    return 0 if tip is None else tip.height


def describe_proposal(record: dict[str, Any], height: int) -> dict[str, Any]:
    """Return a proposal as a query answers it: keys as hex, status as of `height`."""
    action = {name: value.hex() if isinstance(value, bytes) else value
              for name, value in record["action"].items()}
    return {"id": record["id"], "action": action, "proposer": record["proposer"],
            "proposed_height": record["proposed_height"],
            "deadline_height": record["deadline_height"],
            "approvals": [{"member": name, "height": height_approved}
                          for name, height_approved in record["approvals"]],
            "status": get_status(record, height + 1), "closed_height": record["closed_height"],
            "tx_hash": record["tx_hash"].hex()}
