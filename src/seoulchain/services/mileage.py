"""Mileage points: integer points for civic participation, minted, transferred, redeemed, expired.

Theory of operation. An agency holding `mileage.minter` mints points to a citizen's key for a
public reason, within the cap `mileage.cap_per_period` per minter per period of
`mileage.period_blocks` blocks (period p is heights p*L .. p*L + L - 1, L the period length
in force). A holder transfers points to another key or redeems (burns) them at a merchant
that a `mileage.merchant_registrar` registered. Nothing is ever created except by a mint
and nothing leaves except by a redemption or an expiry, so the service keeps

    outstanding = minted - burned - expired = the sum of every account's balance,

no balance below zero, and each lot's amount positive (`check_invariants`, run by
`seoulchain audit` after replay).

Expiry. An account holds its points in lots, each with the height at which it expires:
`expires_at` = the mint height + `mileage.expiry_blocks` in force at the mint. A transfer
moves points with their expiry height, so passing points on never extends their life. A lot
stops counting from the first block whose height is >= its `expires_at`: no transaction in
that block or later can spend it. It is taken off the balance (and added to `expired`) when
the account is next touched — a mint to it, a transfer from or to it, a redemption by it —
or by `expire`, which anyone may call for any account. Spending takes the lots that expire
soonest first. An account holds at most LOTS_PER_ACCOUNT_MAX lots: a lot that would be one
more is merged with the lot nearest in expiry, taking the earlier of the two heights, so
merging never extends any point's life.

State (namespace `mileage`): `acct/<key>` → {balance, lots [[expires_at, amount]...], seq};
`hist/<key>/<seq, 8 bytes>` → one history entry of the account; `cap/<minter key>` → the
minter's points in its current period; `merchant/<key>` → a merchant's registration;
`supply` → {minted, burned, expired, outstanding}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints

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
from seoulchain.services.notary import REASON_CHARS_MAX, PublicText

MINTER_ROLE = "mileage.minter"
REGISTRAR_ROLE = "mileage.merchant_registrar"
PERIOD_PARAM = "mileage.period_blocks"
CAP_PARAM = "mileage.cap_per_period"
EXPIRY_PARAM = "mileage.expiry_blocks"
KEY_BYTES = 32
# Lots an account keeps; more are merged (earlier expiry wins). 64 lots of ~20 bytes keep an
# account record under 2 KiB, and a year of daily participation fits in few merged lots.
LOTS_PER_ACCOUNT_MAX = 64
MERCHANT_NAME_CHARS_MAX = 128
# Entries one history query returns at most.
HISTORY_LIMIT_MAX = 100
# Parameter defaults, counted in blocks of about one second (the devnet's block time).
PERIOD_BLOCKS_DEFAULT = 30 * 86_400       # a month
EXPIRY_BLOCKS_DEFAULT = 5 * 365 * 86_400  # five years, as municipal mileage programmes use
CAP_PER_PERIOD_DEFAULT = 10_000_000
# Upper bound of the block-count parameters: far beyond any programme, far inside 2^63.
BLOCKS_PARAM_MAX = 2**40

ACCOUNT_PREFIX = b"acct/"
HISTORY_PREFIX = b"hist/"
CAP_PREFIX = b"cap/"
MERCHANT_PREFIX = b"merchant/"
SUPPLY_KEY = b"supply"

PublicKey = Annotated[bytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
Points = Annotated[int, Field(ge=1, le=INTEGER_MAX)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=REASON_CHARS_MAX),
                   PublicText]
MerchantName = Annotated[str, StringConstraints(min_length=1,
                                                max_length=MERCHANT_NAME_CHARS_MAX), PublicText]
QueryKey = Annotated[HexBytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]


class MintArgs(StrictArgs):
    to: PublicKey
    amount: Points
    reason: Reason


class TransferArgs(StrictArgs):
    to: PublicKey
    amount: Points


class RedeemArgs(StrictArgs):
    merchant: PublicKey
    amount: Points


class ExpireArgs(StrictArgs):
    account: PublicKey


class RegisterMerchantArgs(StrictArgs):
    merchant: PublicKey
    name: MerchantName


class DeregisterMerchantArgs(StrictArgs):
    merchant: PublicKey
    reason: Reason


class AccountQuery(QueryArgs):
    account: QueryKey
    height: Annotated[int, Field(ge=0, le=INTEGER_MAX)] | None = None


class HistoryQuery(QueryArgs):
    account: QueryKey
    limit: Annotated[int, Field(ge=1, le=HISTORY_LIMIT_MAX)] = 20
    before: Annotated[int, Field(ge=0, le=INTEGER_MAX)] | None = None


class MinterQuery(QueryArgs):
    minter: QueryKey


class MerchantQuery(QueryArgs):
    merchant: QueryKey


class SupplyQuery(QueryArgs):
    pass


def compute_account_key(account: bytes) -> bytes:
    return ACCOUNT_PREFIX + account


def compute_history_key(account: bytes, seq: int) -> bytes:
    return HISTORY_PREFIX + account + b"/" + seq.to_bytes(8, "big")


def new_account() -> dict[str, Any]:
    return {"balance": 0, "lots": [], "seq": 0}


def new_supply() -> dict[str, int]:
    return {"minted": 0, "burned": 0, "expired": 0, "outstanding": 0}


def add_lot(lots: list[list[int]], expires_at: int, amount: int) -> None:
    """Add points expiring at `expires_at` to `lots` (sorted by expiry), merging past the cap."""
    for lot in lots:
        if lot[0] == expires_at:
            lot[1] += amount
            return
    index = sum(1 for lot in lots if lot[0] < expires_at)
    lots.insert(index, [expires_at, amount])
    if len(lots) <= LOTS_PER_ACCOUNT_MAX:
        return
    # Merge the new lot with its nearer neighbour; the merged lot keeps the earlier expiry.
    earlier = lots[index - 1] if index > 0 else None
    later = lots[index + 1] if index + 1 < len(lots) else None
    if later is None or (earlier is not None and expires_at - earlier[0] <= later[0] - expires_at):
        assert earlier is not None
        earlier[1] += amount
        del lots[index]
    else:
        later[0] = expires_at
        later[1] += amount
        del lots[index]


def take_points(lots: list[list[int]], amount: int) -> list[list[int]]:
    """Remove `amount` points from `lots`, soonest expiry first; return the lots taken."""
    taken: list[list[int]] = []
    remaining = amount
    while remaining > 0:
        lot = lots[0]
        part = min(lot[1], remaining)
        taken.append([lot[0], part])
        lot[1] -= part
        remaining -= part
        if lot[1] == 0:
            del lots[0]
    return taken


def sweep_expired(account: dict[str, Any], height: int) -> int:
    """Drop the account's lots that expired by `height`; return the points dropped."""
    lapsed = sum(amount for expires_at, amount in account["lots"] if expires_at <= height)
    if lapsed:
        account["lots"] = [lot for lot in account["lots"] if lot[0] > height]
        account["balance"] -= lapsed
    return lapsed


def compute_spendable(account: dict[str, Any], height: int) -> int:
    """Return the points of `account` that still count at `height`."""
    return sum(amount for expires_at, amount in account["lots"] if expires_at > height)


class MileageService(Service):
    """Mileage points for civic participation: mint, transfer, redeem, expire."""

    name = "mileage"
    version = "1.0.0"
    params: ClassVar[dict[str, ParamSpec]] = {
        "period_blocks": ParamSpec(int, PERIOD_BLOCKS_DEFAULT, "blocks in one minting period "
                                   "(the cap counts each minter's points per period)",
                                   minimum=1, maximum=BLOCKS_PARAM_MAX),
        "cap_per_period": ParamSpec(int, CAP_PER_PERIOD_DEFAULT, "points one minter may mint "
                                    "in one period", minimum=0, maximum=INTEGER_MAX),
        "expiry_blocks": ParamSpec(int, EXPIRY_BLOCKS_DEFAULT, "blocks after its mint at which "
                                   "a point expires", minimum=1, maximum=BLOCKS_PARAM_MAX),
    }

    # ------------------------------------------------------------------ transactions

    @tx_method(args=MintArgs, roles={MINTER_ROLE})
    def mint(self, ctx: TxContext, args: MintArgs) -> None:
        """Mint points to a citizen's key for civic participation, within the minter's cap."""
        supply = self.get_supply(ctx.state)
        if supply["minted"] + args.amount > INTEGER_MAX:
            raise ServiceError(f"minting {args.amount} points would take the points ever "
                               f"minted above {INTEGER_MAX}")
        self.charge_cap(ctx, args.amount)
        account = self.touch_account(ctx, args.to, supply)
        expires_at = ctx.height + ctx.get_param(EXPIRY_PARAM)
        add_lot(account["lots"], expires_at, args.amount)
        account["balance"] += args.amount
        supply["minted"] += args.amount
        supply["outstanding"] += args.amount
        self.append_history(ctx, args.to, account, "minted", args.amount, ctx.signer,
                            args.reason)
        ctx.state.set(compute_account_key(args.to), account)
        ctx.state.set(SUPPLY_KEY, supply)
        ctx.emit("mileage.minted", to=args.to, amount=args.amount, minter=ctx.signer,
                 reason=args.reason, expires_at=expires_at)

    @tx_method(args=TransferArgs, roles=None)
    def transfer(self, ctx: TxContext, args: TransferArgs) -> None:
        """Transfer points from the signer to another key; they keep their expiry heights."""
        if args.to == ctx.signer:
            raise ServiceError("a transfer needs a recipient other than the sender")
        supply = self.get_supply(ctx.state)
        sender = self.touch_account(ctx, ctx.signer, supply)
        self.require_balance(sender, args.amount)
        recipient = self.touch_account(ctx, args.to, supply)
        for expires_at, amount in take_points(sender["lots"], args.amount):
            add_lot(recipient["lots"], expires_at, amount)
        sender["balance"] -= args.amount
        recipient["balance"] += args.amount
        self.append_history(ctx, ctx.signer, sender, "sent", args.amount, args.to, None)
        self.append_history(ctx, args.to, recipient, "received", args.amount, ctx.signer, None)
        ctx.state.set(compute_account_key(ctx.signer), sender)
        ctx.state.set(compute_account_key(args.to), recipient)
        ctx.state.set(SUPPLY_KEY, supply)
        ctx.emit("mileage.transferred", sender=ctx.signer, to=args.to, amount=args.amount)

    @tx_method(args=RedeemArgs, roles=None)
    def redeem(self, ctx: TxContext, args: RedeemArgs) -> None:
        """Redeem (burn) the signer's points at a registered merchant."""
        merchant = ctx.state.get(MERCHANT_PREFIX + args.merchant)
        if merchant is None or not merchant["active"]:
            raise ServiceError(f"{args.merchant.hex()} is not a registered merchant")
        supply = self.get_supply(ctx.state)
        holder = self.touch_account(ctx, ctx.signer, supply)
        self.require_balance(holder, args.amount)
        take_points(holder["lots"], args.amount)
        holder["balance"] -= args.amount
        supply["burned"] += args.amount
        supply["outstanding"] -= args.amount
        merchant["redeemed"] += args.amount
        self.append_history(ctx, ctx.signer, holder, "redeemed", args.amount, args.merchant,
                            None)
        ctx.state.set(compute_account_key(ctx.signer), holder)
        ctx.state.set(MERCHANT_PREFIX + args.merchant, merchant)
        ctx.state.set(SUPPLY_KEY, supply)
        ctx.emit("mileage.redeemed", holder=ctx.signer, merchant=args.merchant,
                 amount=args.amount)

    @tx_method(args=ExpireArgs, roles=None)
    def expire(self, ctx: TxContext, args: ExpireArgs) -> None:
        """Take an account's expired points off its balance and the supply (anyone may)."""
        account = ctx.state.get(compute_account_key(args.account))
        if account is None:
            raise ServiceError(f"account {args.account.hex()} has never held points")
        supply = self.get_supply(ctx.state)
        if not self.sweep(ctx, args.account, account, supply):
            raise ServiceError(f"account {args.account.hex()} holds no expired points at "
                               f"height {ctx.height}")
        ctx.state.set(compute_account_key(args.account), account)
        ctx.state.set(SUPPLY_KEY, supply)

    @tx_method(args=RegisterMerchantArgs, roles={REGISTRAR_ROLE})
    def register_merchant(self, ctx: TxContext, args: RegisterMerchantArgs) -> None:
        """Register a merchant (its key and public business name) where points are redeemed."""
        key = MERCHANT_PREFIX + args.merchant
        record = ctx.state.get(key)
        if record is not None and record["active"]:
            raise ServiceError(f"merchant {args.merchant.hex()} is already registered")
        redeemed = 0 if record is None else record["redeemed"]
        ctx.state.set(key, {"name": args.name, "active": True, "registered_by": ctx.signer,
                            "height": ctx.height, "redeemed": redeemed,
                            "deregistered_height": None, "deregistered_reason": None})
        ctx.emit("mileage.merchant_registered", merchant=args.merchant, name=args.name,
                 registrar=ctx.signer)

    @tx_method(args=DeregisterMerchantArgs, roles={REGISTRAR_ROLE})
    def deregister_merchant(self, ctx: TxContext, args: DeregisterMerchantArgs) -> None:
        """Stop a merchant from accepting points; its record and total redeemed stay."""
        key = MERCHANT_PREFIX + args.merchant
        record = ctx.state.get(key)
        if record is None or not record["active"]:
            raise ServiceError(f"{args.merchant.hex()} is not a registered merchant")
        record.update(active=False, deregistered_height=ctx.height,
                      deregistered_reason=args.reason)
        ctx.state.set(key, record)
        ctx.emit("mileage.merchant_deregistered", merchant=args.merchant, reason=args.reason)

    # ------------------------------------------------------------------ helpers

    def get_supply(self, state: ServiceState) -> dict[str, int]:
        return state.get(SUPPLY_KEY) or new_supply()

    def charge_cap(self, ctx: TxContext, amount: int) -> None:
        """Count `amount` against the signer's cap for the current period, or refuse."""
        period_blocks = ctx.get_param(PERIOD_PARAM)
        cap = ctx.get_param(CAP_PARAM)
        period = ctx.height // period_blocks
        key = CAP_PREFIX + ctx.signer
        record = ctx.state.get(key)
        if record is None or (record["period"], record["period_blocks"]) != (period,
                                                                             period_blocks):
            record = {"period": period, "period_blocks": period_blocks, "minted": 0}
        if record["minted"] + amount > cap:
            first = period * period_blocks
            raise ServiceError(
                f"minting {amount} points would bring this minter's points in the period of "
                f"heights {first} to {first + period_blocks - 1} to "
                f"{record['minted'] + amount}, above the cap of {cap} ({CAP_PARAM})")
        record["minted"] += amount
        ctx.state.set(key, record)

    def touch_account(self, ctx: TxContext, account_key: bytes,
                      supply: dict[str, int]) -> dict[str, Any]:
        """Return the account's record with its expired lots swept off."""
        account = ctx.state.get(compute_account_key(account_key)) or new_account()
        self.sweep(ctx, account_key, account, supply)
        return account

    def sweep(self, ctx: TxContext, account_key: bytes, account: dict[str, Any],
              supply: dict[str, int]) -> int:
        """Expire the account's lapsed lots into `supply`; return the points expired."""
        lapsed = sweep_expired(account, ctx.height)
        if lapsed:
            supply["expired"] += lapsed
            supply["outstanding"] -= lapsed
            self.append_history(ctx, account_key, account, "expired", lapsed, None, None)
            ctx.emit("mileage.expired", account=account_key, amount=lapsed)
        return lapsed

    def require_balance(self, account: dict[str, Any], amount: int) -> None:
        if amount > account["balance"]:
            raise ServiceError(f"the account holds {account['balance']} unexpired points, "
                               f"fewer than the {amount} asked")

    def append_history(self, ctx: TxContext, account_key: bytes, account: dict[str, Any],
                       kind: str, amount: int, counterparty: bytes | None,
                       reason: str | None) -> None:
        """Write one history entry of the account under its next sequence number."""
        account["seq"] += 1
        ctx.state.set(compute_history_key(account_key, account["seq"]), {
            "seq": account["seq"], "kind": kind, "amount": amount,
            "counterparty": counterparty, "reason": reason, "height": ctx.height,
            "tx": ctx.tx_hash, "balance": account["balance"]})

    # ------------------------------------------------------------------ queries

    @query(args=AccountQuery)
    def account(self, state: ServiceState, args: AccountQuery) -> dict[str, Any] | None:
        """Return an account's balance and lots; with `height`, what still counts there."""
        record = state.get(compute_account_key(args.account))
        if record is None:
            return None
        result = {"account": args.account, "balance": record["balance"],
                  "lots": [{"expires_at": expires_at, "amount": amount}
                           for expires_at, amount in record["lots"]],
                  "history_entries": record["seq"]}
        if args.height is not None:
            spendable = compute_spendable(record, args.height)
            result.update(height=args.height, spendable=spendable,
                          lapsed=record["balance"] - spendable)
        return result

    @query(args=HistoryQuery)
    def history(self, state: ServiceState, args: HistoryQuery) -> list[dict[str, Any]]:
        """Return an account's history entries, newest first (before `before`, if given)."""
        record = state.get(compute_account_key(args.account))
        if record is None:
            return []
        last = record["seq"] if args.before is None else min(record["seq"], args.before - 1)
        return [state.get(compute_history_key(args.account, seq))
                for seq in range(last, max(0, last - args.limit), -1)]

    @query(args=SupplyQuery)
    def supply(self, state: ServiceState, args: SupplyQuery) -> dict[str, int]:
        """Return the points minted, burned and expired, and those outstanding."""
        return self.get_supply(state)

    @query(args=MinterQuery)
    def minter(self, state: ServiceState, args: MinterQuery) -> dict[str, int] | None:
        """Return a minter's points in the last period it minted in."""
        return state.get(CAP_PREFIX + args.minter)

    @query(args=MerchantQuery)
    def merchant(self, state: ServiceState, args: MerchantQuery) -> dict[str, Any] | None:
        """Return a merchant's registration and the points redeemed there."""
        return state.get(MERCHANT_PREFIX + args.merchant)

    # ------------------------------------------------------------------ audit

    def check_invariants(self, entries: Iterable[tuple[bytes, Any]]) -> list[str]:
        """Check outstanding = minted - burned - expired = the sum of balances, none negative."""
        accounts: list[tuple[bytes, dict[str, Any]]] = []
        supply = new_supply()
        for key, value in entries:
            if key.startswith(ACCOUNT_PREFIX):
                accounts.append((key[len(ACCOUNT_PREFIX):], value))
            elif key == SUPPLY_KEY:
                supply = value
        return compute_invariant_problems(supply, accounts)


def compute_invariant_problems(supply: dict[str, int],
                               accounts: Iterable[tuple[bytes, dict[str, Any]]]) -> list[str]:
    """Return a description of each broken supply or account invariant (empty: all hold)."""
    problems = []
    if supply["outstanding"] != supply["minted"] - supply["burned"] - supply["expired"]:
        problems.append(f"outstanding supply {supply['outstanding']} is not minted "
                        f"{supply['minted']} - burned {supply['burned']} - expired "
                        f"{supply['expired']}")
    if min(supply.values()) < 0 or supply["minted"] > INTEGER_MAX:
        problems.append(f"a supply counter is out of range: {supply}")
    total = 0
    for account_key, account in accounts:
        lots = account["lots"]
        total += account["balance"]
        if account["balance"] < 0 or any(amount <= 0 for _, amount in lots):
            problems.append(f"account {account_key.hex()} has a negative balance or an empty "
                            "lot")
        if account["balance"] != sum(amount for _, amount in lots):
            problems.append(f"account {account_key.hex()} balance {account['balance']} is not "
                            "the sum of its lots")
        if len(lots) > LOTS_PER_ACCOUNT_MAX or lots != sorted(lots):
            problems.append(f"account {account_key.hex()} lots are unsorted or too many")
    if total != supply["outstanding"]:
        problems.append(f"the balances sum to {total}, not the outstanding supply "
                        f"{supply['outstanding']}")
    return problems
