"""Funds: donation campaigns and sub-contract payments, every won accounted for in public.

Campaigns. An organiser (role `funds.organiser`) registers a campaign with a public purpose
and a target in KRW. Donations are recorded by the campaign's organiser or by a collector
(role `funds.collector`: the bank or payment gateway that received the money), so a donor
signs nothing and no key of theirs reaches the chain; a donor who wants to be named opts in
with a DID (`did:seoul:...`). The organiser records each spending with its amount, purpose
and payee (a public key or a DID). A spending that would take the campaign's spending above
its receipts is refused, so at every height spent <= received and the balance is never
negative. Every donation and spending is one history entry carrying the totals after it.

Sub-contract payments. A contracting officer (role `funds.contracting_officer`) registers a
public contract fixing the prime contractor's and each sub-contractor's share in basis
points, summing to 10,000. The city (role `funds.payer`) records each payment with its split
per payee; the split must be exactly the contract's (`compute_split`), else it is refused.
Split rule: payee i is owed floor(amount * share_bp_i / 10,000); the remainder of those
divisions (fewer won than there are payees) goes to the prime contractor. The parts are
therefore integers, deterministic, and sum exactly to the payment.

State (namespace `funds`): `next/campaign`, `next/contract` (the last number given);
`campaign/<n>` (the campaign with its totals); `campaign/<n>/entry/<seq>` (one history entry
each); `contract/<n>` (the shares with what each payee has been paid in all);
`contract/<n>/payment/<seq>` (one payment record each, with its split). The queries
`campaigns` and `contracts` page through the numbers the counters gave, newest first.

All amounts are integers in KRW, 0 < amount <= 2^63 - 1; totals stay within that bound too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints

from seoulchain.execution.platform import ParamSpec
from seoulchain.execution.service import (
    INTEGER_MAX,
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

ORGANISER_ROLE = "funds.organiser"
COLLECTOR_ROLE = "funds.collector"
CONTRACTING_ROLE = "funds.contracting_officer"
PAYER_ROLE = "funds.payer"
# Shares are in basis points: 10,000 is the whole payment.
BASIS_POINTS_TOTAL = 10_000
# A prime contractor and at most 15 sub-contractors: a payment then emits 1 + 16 events,
# inside the engine's 32 per transaction. The chain parameter may lower it.
SUBCONTRACTORS_MAX = 15
SUBCONTRACTORS_PARAM = "funds.subcontractors_max"
PURPOSE_CHARS_MAX = 256
# A history or payments page returns at most this many entries.
PAGE_ENTRIES_MAX = 100
PAGE_ENTRIES_DEFAULT = 20
# A DID of the `did:seoul` method (W3C DID syntax: colon-separated idchars), or an Ed25519
# public key as 64 lower-case hex digits.
DID_PATTERN = r"^did:seoul:[A-Za-z0-9._%-]+(:[A-Za-z0-9._%-]+)*$"
PARTY_PATTERN = r"^(did:seoul:[A-Za-z0-9._%-]+(:[A-Za-z0-9._%-]+)*|[0-9a-f]{64})$"
PARTY_CHARS_MAX = 128

AmountKrw = Annotated[int, Field(ge=1, le=INTEGER_MAX)]
PartAmountKrw = Annotated[int, Field(ge=0, le=INTEGER_MAX)]
Number = Annotated[int, Field(ge=1, le=INTEGER_MAX)]
Purpose = Annotated[str, StringConstraints(min_length=1, max_length=PURPOSE_CHARS_MAX),
                    PublicText]
Did = Annotated[str, StringConstraints(max_length=PARTY_CHARS_MAX, pattern=DID_PATTERN)]
Party = Annotated[str, StringConstraints(max_length=PARTY_CHARS_MAX, pattern=PARTY_PATTERN)]
BasisPoints = Annotated[int, Field(ge=1, le=BASIS_POINTS_TOTAL)]
PageSize = Annotated[int, Field(ge=1, le=PAGE_ENTRIES_MAX)]


class RegisterCampaignArgs(StrictArgs):
    purpose: Purpose
    target_krw: AmountKrw


class DonateArgs(StrictArgs):
    campaign: Number
    amount_krw: AmountKrw
    purpose: Purpose
    donor: Did | None = None


class SpendArgs(StrictArgs):
    campaign: Number
    amount_krw: AmountKrw
    purpose: Purpose
    payee: Party


class Share(StrictArgs):
    payee: Party
    share_bp: BasisPoints


class RegisterContractArgs(StrictArgs):
    title: Purpose
    prime: Share
    subcontractors: list[Share] = Field(default_factory=list, max_length=SUBCONTRACTORS_MAX)


class Part(StrictArgs):
    payee: Party
    amount_krw: PartAmountKrw


class PayArgs(StrictArgs):
    contract: Number
    amount_krw: AmountKrw
    purpose: Purpose
    split: list[Part] = Field(min_length=1, max_length=SUBCONTRACTORS_MAX + 1)


class CampaignQuery(QueryArgs):
    campaign: Number


class PageQuery(QueryArgs):
    limit: PageSize = PAGE_ENTRIES_DEFAULT
    before: Number | None = None


class HistoryQuery(PageQuery):
    campaign: Number


class ContractQuery(QueryArgs):
    contract: Number


class PaymentsQuery(PageQuery):
    contract: Number


class SplitQuery(QueryArgs):
    contract: Number
    amount_krw: AmountKrw


def compute_campaign_key(campaign: int) -> bytes:
    return f"campaign/{campaign}".encode()


def compute_entry_key(campaign: int, seq: int) -> bytes:
    return f"campaign/{campaign}/entry/{seq}".encode()


def compute_contract_key(contract: int) -> bytes:
    return f"contract/{contract}".encode()


def compute_payment_key(contract: int, seq: int) -> bytes:
    return f"contract/{contract}/payment/{seq}".encode()


def compute_split(shares: list[dict[str, Any]], amount_krw: int) -> list[dict[str, Any]]:
    """Return each payee's part of a payment: floor(amount * share / 10,000), plus the
    remainder to the prime contractor (listed first); the parts sum exactly to the amount."""
    parts = [{"payee": share["payee"], "share_bp": share["share_bp"],
              "amount_krw": amount_krw * share["share_bp"] // BASIS_POINTS_TOTAL}
             for share in shares]
    parts[0]["amount_krw"] += amount_krw - sum(part["amount_krw"] for part in parts)
    assert sum(part["amount_krw"] for part in parts) == amount_krw
    return parts


def get_next_number(state: ServiceState, counter: bytes) -> int:
    """Return the next number of a sequence, and record it as given."""
    number = (state.get(counter) or 0) + 1
    state.set(counter, number)
    return number


def get_page(state: ServiceState, count: int, key_of: Callable[[int], bytes], limit: int,
             before: int | None) -> list[Any]:
    """Return up to `limit` entries numbered below `before` (default: all), newest first."""
    last = count if before is None else min(count, before - 1)
    return [state.get(key_of(seq)) for seq in range(last, max(last - limit, 0), -1)]


class FundsService(Service):
    """Donation campaigns and sub-contract payments, with balances and splits in public."""

    name = "funds"
    version = "1.0.0"
    params: ClassVar[dict[str, ParamSpec]] = {"subcontractors_max": ParamSpec(
        int, SUBCONTRACTORS_MAX, "sub-contractors a contract may name beside its prime "
        "contractor", minimum=0, maximum=SUBCONTRACTORS_MAX)}

    @tx_method(args=RegisterCampaignArgs, roles={ORGANISER_ROLE})
    def register_campaign(self, ctx: TxContext, args: RegisterCampaignArgs) -> None:
        """Register a campaign with its public purpose and target; the signer organises it."""
        number = get_next_number(ctx.state, b"next/campaign")
        ctx.state.set(compute_campaign_key(number), {
            "campaign": number, "organiser": ctx.signer, "purpose": args.purpose,
            "target_krw": args.target_krw, "received_krw": 0, "spent_krw": 0,
            "donations": 0, "spendings": 0, "entries": 0,
            "height": ctx.height, "time_ms": ctx.time_ms, "tx": ctx.tx_hash})
        ctx.emit("funds.campaign_registered", campaign=number, organiser=ctx.signer,
                 target_krw=args.target_krw)

    @tx_method(args=DonateArgs, roles={COLLECTOR_ROLE, ORGANISER_ROLE})
    def donate(self, ctx: TxContext, args: DonateArgs) -> None:
        """Record a donation received for a campaign (by a collector or its organiser)."""
        campaign = self.get_campaign(ctx, args.campaign)
        if not ctx.has_role(ctx.signer, COLLECTOR_ROLE) and campaign["organiser"] != ctx.signer:
            raise ServiceError(f"only campaign {args.campaign}'s organiser or a holder of "
                               f"{COLLECTOR_ROLE} may record its donations")
        if campaign["received_krw"] + args.amount_krw > INTEGER_MAX:
            raise ServiceError(f"campaign {args.campaign}'s receipts would exceed "
                               f"{INTEGER_MAX} KRW (2^63 - 1)")
        campaign["received_krw"] += args.amount_krw
        campaign["donations"] += 1
        seq = self.put_entry(ctx, campaign, "donation", args.amount_krw, args.purpose,
                             donor=args.donor, payee=None)
        ctx.emit("funds.donated", campaign=args.campaign, seq=seq,
                 amount_krw=args.amount_krw, donor=args.donor)

    @tx_method(args=SpendArgs, roles={ORGANISER_ROLE})
    def spend(self, ctx: TxContext, args: SpendArgs) -> None:
        """Record a spending from a campaign; refused if it exceeds the campaign's balance."""
        campaign = self.get_campaign(ctx, args.campaign)
        if campaign["organiser"] != ctx.signer:
            raise ServiceError(f"only campaign {args.campaign}'s organiser may record its "
                               "spending")
        balance_krw = campaign["received_krw"] - campaign["spent_krw"]
        if args.amount_krw > balance_krw:
            raise ServiceError(f"spending {args.amount_krw} KRW exceeds campaign "
                               f"{args.campaign}'s balance of {balance_krw} KRW (received "
                               f"{campaign['received_krw']}, spent {campaign['spent_krw']}); "
                               "spending may never exceed receipts")
        campaign["spent_krw"] += args.amount_krw
        campaign["spendings"] += 1
        seq = self.put_entry(ctx, campaign, "spending", args.amount_krw, args.purpose,
                             donor=None, payee=args.payee)
        ctx.emit("funds.spent", campaign=args.campaign, seq=seq, amount_krw=args.amount_krw,
                 payee=args.payee)

    def get_campaign(self, ctx: TxContext, number: int) -> dict[str, Any]:
        campaign = ctx.state.get(compute_campaign_key(number))
        if campaign is None:
            raise ServiceError(f"campaign {number} is not registered")
        return campaign

    def put_entry(self, ctx: TxContext, campaign: dict[str, Any], kind: str, amount_krw: int,
                  purpose: str, donor: str | None, payee: str | None) -> int:
        """Write one history entry with the totals after it, and the updated campaign."""
        assert 0 <= campaign["spent_krw"] <= campaign["received_krw"] <= INTEGER_MAX
        campaign["entries"] += 1
        seq = campaign["entries"]
        ctx.state.set(compute_entry_key(campaign["campaign"], seq), {
            "seq": seq, "kind": kind, "amount_krw": amount_krw, "purpose": purpose,
            "donor": donor, "payee": payee, "recorded_by": ctx.signer,
            "received_krw": campaign["received_krw"], "spent_krw": campaign["spent_krw"],
            "balance_krw": campaign["received_krw"] - campaign["spent_krw"],
            "height": ctx.height, "time_ms": ctx.time_ms, "tx": ctx.tx_hash})
        ctx.state.set(compute_campaign_key(campaign["campaign"]), campaign)
        return seq

    @tx_method(args=RegisterContractArgs, roles={CONTRACTING_ROLE})
    def register_contract(self, ctx: TxContext, args: RegisterContractArgs) -> None:
        """Register a public contract: the prime's and each sub-contractor's share."""
        allowed = ctx.get_param(SUBCONTRACTORS_PARAM)
        if len(args.subcontractors) > allowed:
            raise ServiceError(f"the contract names {len(args.subcontractors)} "
                               f"sub-contractors; this chain allows at most {allowed} "
                               f"({SUBCONTRACTORS_PARAM})")
        shares = [args.prime, *args.subcontractors]
        total_bp = sum(share.share_bp for share in shares)
        if total_bp != BASIS_POINTS_TOTAL:
            raise ServiceError(f"the shares sum to {total_bp} basis points; they must sum "
                               f"to exactly {BASIS_POINTS_TOTAL}")
        if len({share.payee for share in shares}) != len(shares):
            raise ServiceError("a payee appears twice in the contract; give each one share")
        number = get_next_number(ctx.state, b"next/contract")
        ctx.state.set(compute_contract_key(number), {
            "contract": number, "title": args.title, "officer": ctx.signer,
            "shares": [{"payee": share.payee, "share_bp": share.share_bp,
                        "role": "prime" if index == 0 else "subcontractor", "paid_krw": 0}
                       for index, share in enumerate(shares)],
            "paid_krw": 0, "payments": 0,
            "height": ctx.height, "time_ms": ctx.time_ms, "tx": ctx.tx_hash})
        ctx.emit("funds.contract_registered", contract=number, prime=args.prime.payee,
                 subcontractors=len(args.subcontractors))

    @tx_method(args=PayArgs, roles={PAYER_ROLE})
    def pay(self, ctx: TxContext, args: PayArgs) -> None:
        """Record a city payment under a contract with its split, which must be the contract's."""
        contract = ctx.state.get(compute_contract_key(args.contract))
        if contract is None:
            raise ServiceError(f"contract {args.contract} is not registered")
        if contract["paid_krw"] + args.amount_krw > INTEGER_MAX:
            raise ServiceError(f"contract {args.contract}'s payments would exceed "
                               f"{INTEGER_MAX} KRW (2^63 - 1)")
        owed = compute_split(contract["shares"], args.amount_krw)
        check_split(args.contract, owed, args.split)
        contract["payments"] += 1
        contract["paid_krw"] += args.amount_krw
        for share, part in zip(contract["shares"], owed, strict=True):
            share["paid_krw"] += part["amount_krw"]
        seq = contract["payments"]
        ctx.state.set(compute_payment_key(args.contract, seq), {
            "seq": seq, "amount_krw": args.amount_krw, "purpose": args.purpose,
            "payer": ctx.signer, "split": owed,
            "height": ctx.height, "time_ms": ctx.time_ms, "tx": ctx.tx_hash})
        ctx.state.set(compute_contract_key(args.contract), contract)
        ctx.emit("funds.paid", contract=args.contract, seq=seq, amount_krw=args.amount_krw)
        for part in owed:
            ctx.emit("funds.share_paid", contract=args.contract, seq=seq,
                     payee=part["payee"], amount_krw=part["amount_krw"])

    @query(args=CampaignQuery)
    def campaign(self, state: ServiceState, args: CampaignQuery) -> dict[str, Any] | None:
        """Return a campaign: organiser, purpose, target, received, spent and balance."""
        campaign = state.get(compute_campaign_key(args.campaign))
        if campaign is None:
            return None
        return {**campaign, "balance_krw": campaign["received_krw"] - campaign["spent_krw"]}

    @query(args=PageQuery)
    def campaigns(self, state: ServiceState, args: PageQuery) -> list[Any]:
        """Return the campaigns numbered below `before` (default: all), newest first."""
        page = get_page(state, state.get(b"next/campaign") or 0, compute_campaign_key,
                        args.limit, args.before)
        return [{**campaign, "balance_krw": campaign["received_krw"] - campaign["spent_krw"]}
                for campaign in page]

    @query(args=HistoryQuery)
    def history(self, state: ServiceState, args: HistoryQuery) -> list[Any] | None:
        """Return a campaign's donations and spendings, newest first, with running totals."""
        campaign = state.get(compute_campaign_key(args.campaign))
        if campaign is None:
            return None
        return get_page(state, campaign["entries"],
                        lambda seq: compute_entry_key(args.campaign, seq), args.limit,
                        args.before)

    @query(args=ContractQuery)
    def contract(self, state: ServiceState, args: ContractQuery) -> dict[str, Any] | None:
        """Return a contract: its shares and what each payee has been paid in all."""
        return state.get(compute_contract_key(args.contract))

    @query(args=PageQuery)
    def contracts(self, state: ServiceState, args: PageQuery) -> list[Any]:
        """Return the contracts numbered below `before` (default: all), newest first."""
        return get_page(state, state.get(b"next/contract") or 0, compute_contract_key,
                        args.limit, args.before)

    @query(args=PaymentsQuery)
    def payments(self, state: ServiceState, args: PaymentsQuery) -> list[Any] | None:
        """Return a contract's payments with their splits, newest first."""
        contract = state.get(compute_contract_key(args.contract))
        if contract is None:
            return None
        return get_page(state, contract["payments"],
                        lambda seq: compute_payment_key(args.contract, seq), args.limit,
                        args.before)

    @query(args=SplitQuery)
    def split(self, state: ServiceState, args: SplitQuery) -> list[Any] | None:
        """Return how a payment of amount_krw splits under a contract (what `pay` expects)."""
        contract = state.get(compute_contract_key(args.contract))
        if contract is None:
            return None
        return [{"payee": part["payee"], "amount_krw": part["amount_krw"]}
                for part in compute_split(contract["shares"], args.amount_krw)]


def check_split(contract: int, owed: list[dict[str, Any]], split: list[Part]) -> None:
    """Raise `ServiceError` unless `split` pays each payee exactly what the contract owes."""
    given: dict[str, int] = {}
    for part in split:
        if part.payee in given:
            raise ServiceError(f"the split names payee {part.payee} twice")
        given[part.payee] = part.amount_krw
    mismatch = f"the split does not match contract {contract}"
    for part in owed:
        payee, amount_krw = part["payee"], part["amount_krw"]
        if payee not in given:
            raise ServiceError(f"{mismatch}: it leaves out {payee}, owed {amount_krw} KRW")
        if given[payee] != amount_krw:
            raise ServiceError(f"{mismatch}: {payee} is owed {amount_krw} KRW of this "
                               f"payment, not {given[payee]}")
    strangers = sorted(set(given) - {part["payee"] for part in owed})
    if strangers:
        raise ServiceError(f"{mismatch}: {', '.join(strangers)} is not a payee of it")
