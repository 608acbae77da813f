"""Labor contracts: a standard part-time contract co-signed by employer and worker.

The employer proposes a contract by its SHA-256 (the signed contract stays off chain) with
the public terms the chain checks: the worker's public key, the hourly wage in KRW, the
start date, and optionally a DID for each party. Parties are keys or DIDs, never names.
The contract is in force only once the worker accepts it with their own key; until then
nothing can be recorded under it. An amendment (a new contract document and wage) is
proposed by one party and in force once the other accepts it. Under a contract in force
the employer records work periods (dates and minutes worked; the chain computes the wage
due at the wage in force) and wage payments; either party may end it, after which the
last work periods up to its end date and the final wages may still be recorded.

An hourly wage below the chain parameter `labor.minimum_hourly_wage` in force at the
height of the transaction is refused wherever a wage takes effect: a proposal, its
acceptance, an amendment and its acceptance, and each work record (after governance raises
the minimum, a contract below it must be amended before more work is recorded).

State (namespace `labor`; keys are text so `seoulchain prove state labor KEY` names them):
- `contract/<hash hex>` → the contract: parties, terms in force, status, totals;
- `contract/<hash hex>/amendment/<n>`, `.../work/<n>`, `.../payment/<n>` → one entry each
  (n from 1), so a long history stays cheap;
- `party/<key hex>` → how many contracts the key is party to, and `party/<key hex>/<n>` →
  the n-th (an employer's from its proposal, a worker's from its acceptance, so nobody can
  fill a worker's list with proposals).

Digests (version 1.1.0): one state proof of a record proves every entry it counts. A
contract holds `amendments_digest`, `work_digest` and `payments_digest`, each
`compute_history_digest` (the vehicle service's chain: SHA-256(previous ‖ CBOR(entry)) from
32 zero bytes) over the current values of its entries of that kind, in number order; work
records and payments never change, so theirs grow by one link per entry, and amendments
(whose status changes) are chained again whenever one is written (at most 64). A party's
record is `{"contracts": n, "contracts_digest": d}`, `d` chaining its n index entries, so
one proof of it proves the complete list of a worker's contracts, and one proof per
contract proves each contract's terms, signatures (the proposing and accepting
transactions), amendments, work and payments: `seoulchain prove labor WORKER`.

Upgrade from 1.0.0: until the chain's upgrade height the service writes exactly what 1.0.0
wrote (no digests, a party's record an integer). From that height on, a record of 1.0.0 is
given its digests, computed from its stored entries, the first time a transaction writes
it: a contract with both parties' records, a party's record when it joins a contract.
Queries read both forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, StringConstraints

from seoulchain.execution.platform import ParamSpec
from seoulchain.execution.service import (
    INTEGER_MAX,
    HexBytes,
    QueryArgs,
    Service,
    ServiceError,
    ServiceState,
    StrictArgs,
    TxContext,
    query,
    tx_method,
)
from seoulchain.services.notary import PublicText
from seoulchain.services.vehicle import (
    HISTORY_DIGEST_START,
    chain_digest,
    compute_history_digest,
)

MINIMUM_WAGE_PARAM = "labor.minimum_hourly_wage"
# The 2026 Korean minimum wage: 10,320 KRW an hour (Minimum Wage Commission decision of
# July 2025, published by the Ministry of Employment and Labor for 1 January 2026).
MINIMUM_HOURLY_WAGE_2026_KRW = 10_320
# Bounds governance may set: at least 1 won, and at most about a hundred times today's.
MINIMUM_HOURLY_WAGE_MAX_KRW = 1_000_000
HASH_BYTES = 32
KEY_BYTES = 32
# A work record covers at most one pay period; Korean wages are paid at least monthly
# (Labor Standards Act art. 43), so no period is longer than a month.
WORK_PERIOD_DAYS_MAX = 31
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_HOUR = 60
# Per-contract caps on entries: a daily work record for over ten years, a monthly payment
# (or several a month) for as long, an amendment a month for over five years.
WORK_RECORDS_MAX = 5_000
PAYMENTS_MAX = 2_000
AMENDMENTS_MAX = 64
# Contracts one key may be party to (a large employer's part-time staff over the years).
PARTY_CONTRACTS_MAX = 10_000
# Entries a query returns at once.
QUERY_LIMIT_MAX = 100
# A DID of the city's method: did:seoul: and an identifier of 1-64 characters.
DID_PATTERN = r"^did:seoul:[A-Za-z0-9._-]{1,64}$"
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A contract's entries by kind, and the contract field that counts them.
ENTRY_COUNT_FIELDS = {"amendment": "amendments", "work": "work_records",
                      "payment": "payments"}

# The contract field holding the digest of its entries of each kind (from 1.1.0).
DIGEST_FIELDS = {"amendment": "amendments_digest", "work": "work_digest",
                 "payment": "payments_digest"}
# The version that wrote no digests: a chain upgraded from it runs it until the upgrade.
UNDIGESTED_VERSION = "1.0.0"

PROPOSED, IN_FORCE, WITHDRAWN, ENDED = "proposed", "in_force", "withdrawn", "ended"


def check_date(text: str) -> str:
    """Return `text` if it is a real calendar date written YYYY-MM-DD."""
    if not DATE_PATTERN.fullmatch(text):
        raise ValueError("a date is written YYYY-MM-DD")
    try:
        date.fromisoformat(text)
    except ValueError:  # Python's own message varies by version; the chain's must not
        raise ValueError(f"{text} is not a date of the calendar") from None
    return text


Hash = Annotated[bytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
PublicKey = Annotated[bytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
AmountKrw = Annotated[int, Field(ge=1, le=INTEGER_MAX)]
Did = Annotated[str, StringConstraints(pattern=DID_PATTERN), PublicText]
DateText = Annotated[str, StringConstraints(min_length=10, max_length=10),
                     AfterValidator(check_date)]


class ProposeArgs(StrictArgs):
    contract_hash: Hash
    worker: PublicKey
    hourly_wage_krw: AmountKrw
    start_date: DateText
    employer_did: Did | None = None
    worker_did: Did | None = None


class ContractArgs(StrictArgs):
    contract_hash: Hash


class EndArgs(StrictArgs):
    contract_hash: Hash
    end_date: DateText


class AmendArgs(StrictArgs):
    contract_hash: Hash
    document_hash: Hash
    hourly_wage_krw: AmountKrw


class AmendmentArgs(StrictArgs):
    contract_hash: Hash
    amendment: Annotated[int, Field(ge=1, le=AMENDMENTS_MAX)]


class WorkArgs(StrictArgs):
    contract_hash: Hash
    period_start: DateText
    period_end: DateText
    minutes: Annotated[int, Field(ge=1, le=WORK_PERIOD_DAYS_MAX * MINUTES_PER_DAY)]


class PaymentArgs(StrictArgs):
    contract_hash: Hash
    amount_krw: AmountKrw
    period_start: DateText
    period_end: DateText


class ContractQuery(QueryArgs):
    contract_hash: Annotated[HexBytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]


class HistoryQuery(QueryArgs):
    party: Annotated[HexBytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
    start: Annotated[int, Field(ge=1)] = 1
    limit: Annotated[int, Field(ge=1, le=QUERY_LIMIT_MAX)] = 20


class RecordsQuery(QueryArgs):
    contract_hash: Annotated[HexBytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
    kind: Literal["amendment", "work", "payment"] = "work"
    start: Annotated[int, Field(ge=1)] = 1
    limit: Annotated[int, Field(ge=1, le=QUERY_LIMIT_MAX)] = 20


def compute_contract_key(contract_hash: bytes) -> bytes:
    """Return the state key of a contract: `contract/<hash hex>`."""
    return b"contract/" + contract_hash.hex().encode()


def compute_entry_key(contract_hash: bytes, kind: str, number: int) -> bytes:
    """Return the state key of a contract's n-th entry of `kind`."""
    return compute_contract_key(contract_hash) + f"/{kind}/{number}".encode()


def compute_party_key(party: bytes, number: int | None = None) -> bytes:
    """Return the key of a party's contract count, or of its n-th contract."""
    key = b"party/" + party.hex().encode()
    return key if number is None else key + f"/{number}".encode()


def compute_days(start: str, end: str) -> int:
    """Return the number of calendar days from `start` to `end`, both included."""
    return date.fromisoformat(end).toordinal() - date.fromisoformat(start).toordinal() + 1


def compute_wage_due_krw(minutes: int, hourly_wage_krw: int) -> int:
    """Return the wage for `minutes` at `hourly_wage_krw`, rounded down to the won."""
    return minutes * hourly_wage_krw // MINUTES_PER_HOUR


class LaborService(Service):
    """Part-time labor contracts co-signed by employer and worker, with work and wages."""

    name = "labor"
    version = "1.1.0"
    params: ClassVar[dict[str, ParamSpec]] = {"minimum_hourly_wage": ParamSpec(
        int, MINIMUM_HOURLY_WAGE_2026_KRW, "lowest hourly wage in KRW a contract may set",
        minimum=1, maximum=MINIMUM_HOURLY_WAGE_MAX_KRW)}

    # ------------------------------------------------------------------ contracts

    @tx_method(args=ProposeArgs, roles=None)
    def propose(self, ctx: TxContext, args: ProposeArgs) -> None:
        """Propose a contract by its SHA-256 as its employer; the worker accepts it."""
        key = compute_contract_key(args.contract_hash)
        if ctx.state.has(key):
            raise ServiceError(f"contract {args.contract_hash.hex()} is already proposed")
        if args.worker == ctx.signer:
            raise ServiceError("the worker must be another key than the employer")
        check_minimum_wage(ctx, args.hourly_wage_krw)
        add_party_contract(ctx, ctx.signer, args.contract_hash, "employer")
        contract = {
            "contract_hash": args.contract_hash, "employer": ctx.signer,
            "worker": args.worker, "employer_did": args.employer_did,
            "worker_did": args.worker_did, "document_hash": args.contract_hash,
            "hourly_wage_krw": args.hourly_wage_krw, "start_date": args.start_date,
            "end_date": None, "status": PROPOSED, "proposed_height": ctx.height,
            "proposed_tx": ctx.tx_hash, "signed_height": None, "signed_tx": None,
            "closed_height": None, "amendments": 0, "pending_amendment": None,
            "work_records": 0, "worked_until": None, "minutes_worked": 0,
            "wages_due_krw": 0, "payments": 0, "wages_paid_krw": 0}
        if is_digesting(ctx):
            contract.update({name: HISTORY_DIGEST_START for name in DIGEST_FIELDS.values()})
        ctx.state.set(key, contract)
        ctx.emit("labor.proposed", contract_hash=args.contract_hash, employer=ctx.signer,
                 worker=args.worker, hourly_wage_krw=args.hourly_wage_krw)

    @tx_method(args=ContractArgs, roles=None)
    def accept(self, ctx: TxContext, args: ContractArgs) -> None:
        """Sign a proposed contract as its worker: it is in force from this height."""
        contract = get_contract(ctx, args.contract_hash)
        require_party(ctx, contract, "worker", "accept a contract")
        require_status(contract, PROPOSED, "accepted")
        check_minimum_wage(ctx, contract["hourly_wage_krw"])
        add_party_contract(ctx, ctx.signer, args.contract_hash, "worker")
        contract.update(status=IN_FORCE, signed_height=ctx.height, signed_tx=ctx.tx_hash)
        save_contract(ctx, contract)
        ctx.emit("labor.signed", contract_hash=args.contract_hash,
                 employer=contract["employer"], worker=ctx.signer)

    @tx_method(args=ContractArgs, roles=None)
    def withdraw(self, ctx: TxContext, args: ContractArgs) -> None:
        """Withdraw (employer) or decline (worker) a contract not yet signed by the worker."""
        contract = get_contract(ctx, args.contract_hash)
        require_party(ctx, contract, None, "withdraw a contract")
        require_status(contract, PROPOSED, "withdrawn")
        contract.update(status=WITHDRAWN, closed_height=ctx.height)
        save_contract(ctx, contract)
        ctx.emit("labor.withdrawn", contract_hash=args.contract_hash, by=ctx.signer)

    @tx_method(args=EndArgs, roles=None)
    def end(self, ctx: TxContext, args: EndArgs) -> None:
        """End a contract in force (either party): work up to `end_date` may still be recorded."""
        contract = get_contract(ctx, args.contract_hash)
        require_party(ctx, contract, None, "end a contract")
        require_status(contract, IN_FORCE, "ended")
        last_day = contract["worked_until"] or contract["start_date"]
        if args.end_date < last_day:
            raise ServiceError(f"end date {args.end_date} is before {last_day}, the "
                               "contract's start or the end of its last recorded work")
        if contract["pending_amendment"] is not None:
            close_amendment(ctx, contract, contract["pending_amendment"])
        contract.update(status=ENDED, closed_height=ctx.height, end_date=args.end_date,
                        pending_amendment=None)
        save_contract(ctx, contract)
        ctx.emit("labor.ended", contract_hash=args.contract_hash, by=ctx.signer,
                 end_date=args.end_date)

    # ------------------------------------------------------------------ amendments

    @tx_method(args=AmendArgs, roles=None)
    def propose_amendment(self, ctx: TxContext, args: AmendArgs) -> None:
        """Propose an amended contract document and wage (either party; the other accepts)."""
        contract = get_contract(ctx, args.contract_hash)
        role = require_party(ctx, contract, None, "amend a contract")
        require_status(contract, IN_FORCE, "amended")
        if contract["pending_amendment"] is not None:
            raise ServiceError(f"amendment {contract['pending_amendment']} is pending: it "
                               "must be accepted or withdrawn first")
        if contract["amendments"] >= AMENDMENTS_MAX:
            raise ServiceError(f"the contract has {AMENDMENTS_MAX} amendments, the most "
                               "one contract may have; sign a new contract instead")
        check_minimum_wage(ctx, args.hourly_wage_krw)
        number = contract["amendments"] + 1
        contract.update(amendments=number, pending_amendment=number)
        save_entry(ctx, contract, "amendment", number, {
            "document_hash": args.document_hash, "hourly_wage_krw": args.hourly_wage_krw,
            "proposed_by": role, "proposed_height": ctx.height, "proposed_tx": ctx.tx_hash,
            "status": PROPOSED, "closed_height": None})
        save_contract(ctx, contract)
        ctx.emit("labor.amendment_proposed", contract_hash=args.contract_hash,
                 amendment=number, by=ctx.signer, hourly_wage_krw=args.hourly_wage_krw)

    @tx_method(args=AmendmentArgs, roles=None)
    def accept_amendment(self, ctx: TxContext, args: AmendmentArgs) -> None:
        """Accept the other party's pending amendment: its terms are in force from here."""
        contract, amendment = get_pending_amendment(ctx, args)
        role = require_party(ctx, contract, None, "accept an amendment")
        if amendment["proposed_by"] == role:
            raise ServiceError(f"the {role} proposed amendment {args.amendment}; only the "
                               "other party may accept it")
        check_minimum_wage(ctx, amendment["hourly_wage_krw"])
        amendment.update(status=IN_FORCE, closed_height=ctx.height)
        contract.update(pending_amendment=None, document_hash=amendment["document_hash"],
                        hourly_wage_krw=amendment["hourly_wage_krw"])
        save_entry(ctx, contract, "amendment", args.amendment, amendment)
        save_contract(ctx, contract)
        ctx.emit("labor.amended", contract_hash=args.contract_hash, amendment=args.amendment,
                 hourly_wage_krw=amendment["hourly_wage_krw"])

    @tx_method(args=AmendmentArgs, roles=None)
    def withdraw_amendment(self, ctx: TxContext, args: AmendmentArgs) -> None:
        """Withdraw (its proposer) or decline (the other party) a pending amendment."""
        contract, _ = get_pending_amendment(ctx, args)
        require_party(ctx, contract, None, "withdraw an amendment")
        close_amendment(ctx, contract, args.amendment)
        contract.update(pending_amendment=None)
        save_contract(ctx, contract)
        ctx.emit("labor.amendment_withdrawn", contract_hash=args.contract_hash,
                 amendment=args.amendment, by=ctx.signer)

    # ------------------------------------------------------------------ work and wages

    @tx_method(args=WorkArgs, roles=None)
    def record_work(self, ctx: TxContext, args: WorkArgs) -> None:
        """Record a work period (employer): dates, minutes, and the wage due for them."""
        contract = get_contract(ctx, args.contract_hash)
        require_party(ctx, contract, "employer", "record work")
        check_recordable(contract, "work is recorded")
        check_work_period(contract, args)
        wage = contract["hourly_wage_krw"]
        check_minimum_wage(ctx, wage)
        due = compute_wage_due_krw(args.minutes, wage)
        number = next_entry_number(contract, "work_records", WORK_RECORDS_MAX, "work records")
        contract.update(work_records=number,
                        worked_until=max(contract["worked_until"] or "", args.period_end),
                        minutes_worked=contract["minutes_worked"] + args.minutes,
                        wages_due_krw=add_amount(contract["wages_due_krw"], due, "wages due"))
        save_entry(ctx, contract, "work", number, {
            "period_start": args.period_start, "period_end": args.period_end,
            "minutes": args.minutes, "hourly_wage_krw": wage, "wage_due_krw": due,
            "height": ctx.height, "tx": ctx.tx_hash})
        save_contract(ctx, contract)
        ctx.emit("labor.work_recorded", contract_hash=args.contract_hash, entry=number,
                 minutes=args.minutes, wage_due_krw=due)

    @tx_method(args=PaymentArgs, roles=None)
    def record_payment(self, ctx: TxContext, args: PaymentArgs) -> None:
        """Record a wage payment (employer) for a pay period, also after the contract ended."""
        contract = get_contract(ctx, args.contract_hash)
        require_party(ctx, contract, "employer", "record a wage payment")
        check_recordable(contract, "wages are recorded")
        check_period(args.period_start, args.period_end)
        number = next_entry_number(contract, "payments", PAYMENTS_MAX, "payments")
        contract.update(payments=number, wages_paid_krw=add_amount(
            contract["wages_paid_krw"], args.amount_krw, "wages paid"))
        save_entry(ctx, contract, "payment", number, {
            "amount_krw": args.amount_krw, "period_start": args.period_start,
            "period_end": args.period_end, "height": ctx.height, "tx": ctx.tx_hash})
        save_contract(ctx, contract)
        ctx.emit("labor.wage_paid", contract_hash=args.contract_hash, entry=number,
                 amount_krw=args.amount_krw)

    # ------------------------------------------------------------------ audit

    def check_invariants(self, entries: Iterable[tuple[bytes, Any]]) -> list[str]:
        """Name each contract or party record whose digest is not that of its entries."""
        state = dict(entries)
        problems = []
        for key, record in state.items():
            parts = key.split(b"/")
            if parts[0] == b"contract" and len(parts) == 2 and DIGEST_FIELDS["work"] in record:
                problems += [
                    f"{key.decode()}: {name} is not the digest of its {kind} entries"
                    for kind, name in DIGEST_FIELDS.items()
                    if record[name] != compute_history_digest([
                        state.get(key + f"/{kind}/{number}".encode())
                        for number in range(1, record[ENTRY_COUNT_FIELDS[kind]] + 1)])]
            if parts[0] == b"party" and len(parts) == 2 and isinstance(record, dict):
                listed = [state.get(key + f"/{number}".encode())
                          for number in range(1, record["contracts"] + 1)]
                if record["contracts_digest"] != compute_history_digest(listed):
                    problems.append(f"{key.decode()}: contracts_digest is not the digest of "
                                    "its list entries")
        return problems

    # ------------------------------------------------------------------ queries

    @query(args=ContractQuery)
    def contract(self, state: ServiceState, args: ContractQuery) -> dict[str, Any] | None:
        """Return a contract: parties, terms in force, status and totals, or null."""
        record = state.get(compute_contract_key(args.contract_hash))
        if record is None:
            return None
        return {"key": compute_contract_key(args.contract_hash).decode(), **record}

    @query(args=HistoryQuery)
    def history(self, state: ServiceState, args: HistoryQuery) -> dict[str, Any]:
        """Return the contracts a key is party to (a worker's work history), oldest first."""
        count = get_party_count(state, args.party)
        contracts = []
        for number in range(args.start, min(count, args.start + args.limit - 1) + 1):
            entry = state.get(compute_party_key(args.party, number))
            record = state.get(compute_contract_key(entry["contract_hash"]))
            contracts.append({"number": number, "role": entry["role"],
                              "key": compute_contract_key(entry["contract_hash"]).decode(),
                              **record})
        return {"party": args.party, "contracts_total": count, "contracts": contracts}

    @query(args=RecordsQuery)
    def records(self, state: ServiceState, args: RecordsQuery) -> dict[str, Any] | None:
        """Return a contract's amendments, work records or payments, one page, oldest first."""
        contract = state.get(compute_contract_key(args.contract_hash))
        if contract is None:
            return None
        total = contract[ENTRY_COUNT_FIELDS[args.kind]]
        entries = []
        for number in range(args.start, min(total, args.start + args.limit - 1) + 1):
            key = compute_entry_key(args.contract_hash, args.kind, number)
            entries.append({"number": number, "key": key.decode(), **state.get(key)})
        return {"contract_hash": args.contract_hash, "kind": args.kind, "total": total,
                "entries": entries}


# ---------------------------------------------------------------------- rules


def get_contract(ctx: TxContext, contract_hash: bytes) -> dict[str, Any]:
    """Return a contract's record, or refuse if none was proposed under that hash."""
    contract = ctx.state.get(compute_contract_key(contract_hash))
    if contract is None:
        raise ServiceError(f"no contract {contract_hash.hex()} was proposed")
    return contract


def require_party(ctx: TxContext, contract: dict[str, Any], role: str | None,
                  action: str) -> str:
    """Return the signer's role in the contract; refuse unless it is `role` (None: either)."""
    roles = [name for name in ("employer", "worker") if contract[name] == ctx.signer]
    if not roles or (role is not None and roles[0] != role):
        who = f"the contract's {role}" if role else "a party to the contract"
        raise ServiceError(f"only {who} may {action}")
    return roles[0]


def require_status(contract: dict[str, Any], status: str, action: str) -> None:
    """Refuse unless the contract has `status`, saying what it is instead."""
    if contract["status"] != status:
        raise ServiceError(f"contract {contract['contract_hash'].hex()} is "
                           f"{describe_status(contract)}; only a contract "
                           f"{status.replace('_', ' ')} can be {action}")


def describe_status(contract: dict[str, Any]) -> str:
    """Say what state a contract is in, in words."""
    if contract["status"] == PROPOSED:
        return "signed by the employer only, not in force until the worker accepts it"
    return {IN_FORCE: "in force", WITHDRAWN: "withdrawn",
            ENDED: f"ended on {contract['end_date']}"}[contract["status"]]


def check_recordable(contract: dict[str, Any], action: str) -> None:
    """Refuse to record under a contract never in force (one ended takes its last work
    periods and final wages)."""
    if contract["status"] not in (IN_FORCE, ENDED):
        raise ServiceError(f"contract {contract['contract_hash'].hex()} is "
                           f"{describe_status(contract)}; {action} only under a contract "
                           "signed by both")


def check_minimum_wage(ctx: TxContext, hourly_wage_krw: int) -> None:
    """Refuse a wage below the minimum hourly wage in force at this height."""
    minimum = ctx.get_param(MINIMUM_WAGE_PARAM)
    if hourly_wage_krw < minimum:
        raise ServiceError(f"hourly wage {hourly_wage_krw:,} KRW is below the minimum "
                           f"hourly wage of {minimum:,} KRW in force at height {ctx.height} "
                           f"({MINIMUM_WAGE_PARAM}); amend the contract to at least that")


def check_period(start: str, end: str) -> int:
    """Return a period's length in days; refuse one that ends before it starts or is long."""
    days = compute_days(start, end)
    if days < 1:
        raise ServiceError(f"period ends ({end}) before it starts ({start})")
    if days > WORK_PERIOD_DAYS_MAX:
        raise ServiceError(f"period {start} to {end} is {days} days; a record covers at "
                           f"most {WORK_PERIOD_DAYS_MAX}")
    return days


def check_work_period(contract: dict[str, Any], args: WorkArgs) -> None:
    """Refuse a work period outside the contract's dates or with more minutes than it has."""
    days = check_period(args.period_start, args.period_end)
    if args.period_start < contract["start_date"]:
        raise ServiceError(f"period starts {args.period_start}, before the contract's start "
                           f"date {contract['start_date']}")
    if contract["end_date"] is not None and args.period_end > contract["end_date"]:
        raise ServiceError(f"period ends {args.period_end}, after the contract ended on "
                           f"{contract['end_date']}")
    if args.minutes > days * MINUTES_PER_DAY:
        raise ServiceError(f"{args.minutes} minutes do not fit in {days} days")


def next_entry_number(contract: dict[str, Any], field: str, cap: int, what: str) -> int:
    """Return the number of a contract's next entry, or refuse past the cap."""
    if contract[field] >= cap:
        raise ServiceError(f"the contract has {cap:,} {what}, the most one contract may "
                           "have; sign a new contract to record more")
    return contract[field] + 1


def add_amount(total: int, amount: int, what: str) -> int:
    """Return `total + amount`, refusing a total above 2^63-1 KRW."""
    if total + amount > INTEGER_MAX:
        raise ServiceError(f"{what} would exceed 2^63-1 KRW")
    return total + amount


def add_party_contract(ctx: TxContext, party: bytes, contract_hash: bytes, role: str) -> None:
    """Append a contract to a party's list (and its digest), refusing past
    PARTY_CONTRACTS_MAX."""
    count = get_party_count(ctx.state, party)
    if count >= PARTY_CONTRACTS_MAX:
        raise ServiceError(f"key {party.hex()} is party to {PARTY_CONTRACTS_MAX:,} "
                           "contracts, the most one key may be; use another key")
    entry = {"contract_hash": contract_hash, "role": role}
    if not is_digesting(ctx):
        ctx.state.set(compute_party_key(party, count + 1), entry)
        ctx.state.set(compute_party_key(party), count + 1)
        return
    migrate_party(ctx, party)
    record = ctx.state.get(compute_party_key(party)) or {
        "contracts": 0, "contracts_digest": HISTORY_DIGEST_START}
    ctx.state.set(compute_party_key(party, count + 1), entry)
    ctx.state.set(compute_party_key(party), {
        "contracts": count + 1,
        "contracts_digest": chain_digest(record["contracts_digest"], entry)})


def get_party_count(state: ServiceState, party: bytes) -> int:
    """Return how many contracts `party` is party to (a 1.0.0 record is the bare count)."""
    record = state.get(compute_party_key(party))
    if record is None:
        return 0
    return record if isinstance(record, int) else record["contracts"]


def migrate_party(ctx: TxContext, party: bytes) -> None:
    """Give a party's 1.0.0 record (a bare count) the digest of its index entries."""
    count = ctx.state.get(compute_party_key(party))
    if not isinstance(count, int):
        return
    entries = [ctx.state.get(compute_party_key(party, number))
               for number in range(1, count + 1)]
    ctx.state.set(compute_party_key(party), {
        "contracts": count, "contracts_digest": compute_history_digest(entries)})


def is_digesting(ctx: TxContext) -> bool:
    """Return True when the chain runs a version that keeps digests (1.1.0 on)."""
    return ctx.get_service_version() != UNDIGESTED_VERSION


def compute_entries_digest(state: ServiceState, contract: dict[str, Any], kind: str) -> bytes:
    """Return the digest over a contract's stored entries of `kind`, in number order."""
    count = contract[ENTRY_COUNT_FIELDS[kind]]
    return compute_history_digest([
        state.get(compute_entry_key(contract["contract_hash"], kind, number))
        for number in range(1, count + 1)])


def save_entry(ctx: TxContext, contract: dict[str, Any], kind: str, number: int,
               entry: dict[str, Any]) -> None:
    """Write a contract's entry and bring the contract's digest of that kind up to date."""
    ctx.state.set(compute_entry_key(contract["contract_hash"], kind, number), entry)
    name = DIGEST_FIELDS[kind]
    if name not in contract:  # a 1.0.0 record: save_contract migrates it whole
        return
    if kind == "amendment":  # amendments change in place: chain them all again
        contract[name] = compute_entries_digest(ctx.state, contract, kind)
    else:
        contract[name] = chain_digest(contract[name], entry)


def save_contract(ctx: TxContext, contract: dict[str, Any]) -> None:
    """Write a contract; from 1.1.0 on, a 1.0.0 record first gets its digests and its
    parties' records theirs."""
    if is_digesting(ctx) and DIGEST_FIELDS["work"] not in contract:
        for kind, name in DIGEST_FIELDS.items():
            contract[name] = compute_entries_digest(ctx.state, contract, kind)
        for role in ("employer", "worker"):
            migrate_party(ctx, contract[role])
    ctx.state.set(compute_contract_key(contract["contract_hash"]), contract)


def get_pending_amendment(ctx: TxContext, args: AmendmentArgs
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a contract in force and its pending amendment `args.amendment`, or refuse."""
    contract = get_contract(ctx, args.contract_hash)
    require_status(contract, IN_FORCE, "amended")
    if contract["pending_amendment"] != args.amendment:
        raise ServiceError(f"amendment {args.amendment} of contract "
                           f"{args.contract_hash.hex()} is not pending")
    amendment = ctx.state.get(compute_entry_key(args.contract_hash, "amendment",
                                                args.amendment))
    return contract, amendment


def close_amendment(ctx: TxContext, contract: dict[str, Any], number: int) -> None:
    """Mark a pending amendment withdrawn at this height."""
    amendment = ctx.state.get(compute_entry_key(contract["contract_hash"], "amendment", number))
    amendment.update(status=WITHDRAWN, closed_height=ctx.height)
    save_entry(ctx, contract, "amendment", number, amendment)
