"""Vehicle: a used car's public history — registration, inspections, repairs, sales, owners.

A registrar (role `vehicle.registrar`, the registration office) registers a vehicle by its
VIN and names its first owner's public key (the registrar's own key when none is named, as
when a maker or importer registers a car it still holds). Afterwards parties holding a role
add entries: a performance inspection with its odometer reading (`vehicle.inspector`), an
accident or repair record (`vehicle.repairer`), a sale listing (`vehicle.dealer`), and a
certified odometer replacement (`vehicle.inspector` or `vehicle.repairer`). Ownership moves
with the signatures of both parties in two transactions: the current owner offers the car to
a buyer's key, and that buyer accepts; until the buyer signs, nothing changes hands. The
owner, or a registrar, scraps a vehicle; a scrapped vehicle takes no further entry.

VINs follow ISO 3779: 17 characters from 0-9 and A-Z without I, O and Q (letters are read
in upper case). The check digit in position 9 (49 CFR 565.15) is verified only where the
World Manufacturer Identifier's region is North America (position 1 is 1-5), the only
region that mandates it. Other regions, Korea (KL-KR) among them, use position 9 freely,
so a Korean VIN is checked for its length and alphabet only.

Odometer readings never go back: a reading below the vehicle's last one is refused, unless
a certified meter replacement was recorded first (`replace_meter`), which records the old
meter's final reading and the new meter's first one, and restarts from the latter.

No personal data: owners are public keys, and the free-text fields (model, descriptions,
notes) are refused when they hold a resident registration or phone number.

State (namespace `vehicle`):
- `vin/<VIN>` → the vehicle record: owner, status, last odometer reading, the pending
  offer and listing, the number of history entries and the digest chaining them;
- `vin/<VIN>/<seq, 8 digits>` → one history entry, numbered from 1;
- `owner/<public key hex>` → the VINs that key owns (at most OWNED_VEHICLES_MAX).

The record's `history_digest` is SHA-256(previous digest ‖ CBOR(entry)) over the entries in
order, starting from 32 zero bytes, so a proof of the record alone commits to the whole
history a `history` query returns (`compute_history_digest`).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from seoulchain.codec import cbor
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

REGISTRAR_ROLE = "vehicle.registrar"
INSPECTOR_ROLE = "vehicle.inspector"
REPAIRER_ROLE = "vehicle.repairer"
DEALER_ROLE = "vehicle.dealer"

VIN_CHARS = 17  # ISO 3779
VIN_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
# 49 CFR 565.15: letter values (I, O, Q excluded) and position weights of the check digit.
VIN_LETTER_VALUES = {letter: value for letters, first in (("ABCDEFGH", 1), ("JKLMN", 1),
                                                          ("P", 7), ("R", 9),
                                                          ("STUVWXYZ", 2))
                     for value, letter in enumerate(letters, first)}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_CHECK_POSITION = 8  # position 9, counted from 0
# ISO 3780 regions: a first character 1-5 is North America, which mandates the check digit.
CHECK_DIGIT_REGIONS = frozenset("12345")

PUBLIC_KEY_BYTES = 32
# Ten million km: far beyond any road vehicle's life (the record car has under five million).
ODOMETER_KM_MAX = 10_000_000
MODEL_CHARS_MAX = 64
DESCRIPTION_CHARS_MAX = 256
# Entries one vehicle's history may hold: two inspections a year for fifty years plus
# repairs, listings and sales stay far below it; a `history` query reads them all.
HISTORY_ENTRIES_MAX = 4096
# Vehicles one key may own: a fleet or a dealer's stock; the VIN list is one state value
# (4,096 VINs of 18 CBOR bytes stay well inside the 64 KiB value limit).
OWNED_VEHICLES_MAX = 4096
HISTORY_DIGEST_START = bytes(32)
ENTRY_SEQ_DIGITS = 8

STATUS_ACTIVE = "active"
STATUS_SCRAPPED = "scrapped"


def compute_vin_check_digit(vin: str) -> str:
    """Return the North American check digit of a 17-character VIN ('0'-'9' or 'X')."""
    total = sum((int(char) if char.isdigit() else VIN_LETTER_VALUES[char]) * weight
                for char, weight in zip(vin, VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_check_digit_region(vin: str) -> bool:
    """Return True if the VIN's WMI region (North America, 1-5) mandates the check digit."""
    return vin[0] in CHECK_DIGIT_REGIONS


def check_vin(value: str) -> str:
    """Return a VIN in upper case, or fail validation naming what is wrong with it."""
    if len(value) != VIN_CHARS:
        raise PydanticCustomError("vin", "a VIN has 17 characters, not {count}",
                                  {"count": len(value)})
    # Upper-case ASCII only: str.upper would turn some other letters into A-Z.
    vin = "".join(char.upper() if char.isascii() else char for char in value)
    wrong = sorted({char for char in vin if char not in VIN_ALPHABET})
    if wrong:
        raise PydanticCustomError("vin", "a VIN holds only 0-9 and A-Z without I, O and Q, "
                                  "not {chars}", {"chars": " ".join(map(repr, wrong))})
    if is_check_digit_region(vin):
        expected = compute_vin_check_digit(vin)
        if vin[VIN_CHECK_POSITION] != expected:
            raise PydanticCustomError(
                "vin", "check digit (position 9) is {found}, but this North American VIN's "
                "digits give {expected}", {"found": vin[VIN_CHECK_POSITION],
                                           "expected": expected})
    return vin


# The schema a client sees (`seoulchain services`); check_vin gives the reasons.
VIN_JSON_SCHEMA = {"type": "string", "minLength": VIN_CHARS, "maxLength": VIN_CHARS,
                   "description": "ISO 3779 VIN; check digit verified for WMI regions 1-5"}
Vin = Annotated[str, AfterValidator(check_vin), WithJsonSchema(VIN_JSON_SCHEMA)]
PublicKey = Annotated[bytes, Field(min_length=PUBLIC_KEY_BYTES, max_length=PUBLIC_KEY_BYTES)]
OdometerKm = Annotated[int, Field(ge=0, le=ODOMETER_KM_MAX)]
AmountKrw = Annotated[int, Field(gt=0, le=INTEGER_MAX)]
Model = Annotated[str, StringConstraints(max_length=MODEL_CHARS_MAX), PublicText]
Description = Annotated[str, StringConstraints(min_length=1, max_length=DESCRIPTION_CHARS_MAX),
                        PublicText]
Note = Annotated[str, StringConstraints(max_length=DESCRIPTION_CHARS_MAX), PublicText]


class RegisterArgs(StrictArgs):
    vin: Vin
    owner: PublicKey | None = None
    odometer_km: OdometerKm = 0
    model: Model = ""


class InspectArgs(StrictArgs):
    vin: Vin
    odometer_km: OdometerKm
    result: Literal["pass", "fail"]
    note: Note = ""


class ReplaceMeterArgs(StrictArgs):
    vin: Vin
    old_meter_km: OdometerKm
    new_meter_km: OdometerKm
    note: Note = ""


class RepairArgs(StrictArgs):
    vin: Vin
    accident: bool
    description: Description
    odometer_km: OdometerKm | None = None


class ListArgs(StrictArgs):
    vin: Vin
    price_krw: AmountKrw
    odometer_km: OdometerKm | None = None


class OfferArgs(StrictArgs):
    vin: Vin
    buyer: PublicKey
    price_krw: AmountKrw | None = None


class VinArgs(StrictArgs):
    vin: Vin


class VinQuery(QueryArgs):
    vin: Vin


class OwnerQuery(QueryArgs):
    owner: Annotated[HexBytes, Field(min_length=PUBLIC_KEY_BYTES, max_length=PUBLIC_KEY_BYTES)]


def compute_vehicle_key(vin: str) -> bytes:
    return b"vin/" + vin.encode()


def compute_entry_key(vin: str, seq: int) -> bytes:
    return b"vin/" + vin.encode() + b"/" + str(seq).zfill(ENTRY_SEQ_DIGITS).encode()


def compute_owner_key(owner: bytes) -> bytes:
    return b"owner/" + owner.hex().encode()


def compute_history_digest(entries: list[dict[str, Any]]) -> bytes:
    """Return the digest chaining `entries` in order, as a vehicle record holds it."""
    digest = HISTORY_DIGEST_START
    for entry in entries:
        digest = chain_digest(digest, entry)
    return digest


def chain_digest(previous: bytes, entry: dict[str, Any]) -> bytes:
    return hashlib.sha256(previous + cbor.encode(entry)).digest()


class VehicleService(Service):
    """Used-car history: registration, inspections, repairs, listings, owners, scrapping."""

    name = "vehicle"
    version = "1.0.0"

    @tx_method(args=RegisterArgs, roles={REGISTRAR_ROLE})
    def register(self, ctx: TxContext, args: RegisterArgs) -> None:
        """Register a vehicle by VIN with its first owner (default: the registrar)."""
        if ctx.state.has(compute_vehicle_key(args.vin)):
            raise ServiceError(f"vehicle {args.vin} is already registered")
        owner = args.owner if args.owner is not None else ctx.signer
        record = {"vin": args.vin, "model": args.model, "owner": owner,
                  "registrar": ctx.signer, "registered_height": ctx.height,
                  "status": STATUS_ACTIVE, "odometer_km": args.odometer_km,
                  "meter_replacements": 0, "offer": None, "listing": None,
                  "entries": 0, "history_digest": HISTORY_DIGEST_START}
        self.add_owned(ctx, owner, args.vin)
        self.append_entry(ctx, record, "registered", owner=owner, model=args.model,
                          odometer_km=args.odometer_km)
        ctx.emit("vehicle.registered", vin=args.vin, owner=owner, registrar=ctx.signer)

    @tx_method(args=InspectArgs, roles={INSPECTOR_ROLE})
    def inspect(self, ctx: TxContext, args: InspectArgs) -> None:
        """Record a performance inspection with its odometer reading."""
        record = self.get_active(ctx, args.vin)
        self.advance_odometer(record, args.odometer_km)
        self.append_entry(ctx, record, "inspection", odometer_km=args.odometer_km,
                          result=args.result, note=args.note)
        ctx.emit("vehicle.inspected", vin=args.vin, odometer_km=args.odometer_km,
                 result=args.result, inspector=ctx.signer)

    @tx_method(args=ReplaceMeterArgs, roles={INSPECTOR_ROLE, REPAIRER_ROLE})
    def replace_meter(self, ctx: TxContext, args: ReplaceMeterArgs) -> None:
        """Certify an odometer replacement; later readings continue from the new meter's."""
        record = self.get_active(ctx, args.vin)
        self.advance_odometer(record, args.old_meter_km)
        record["odometer_km"] = args.new_meter_km
        record["meter_replacements"] += 1
        self.append_entry(ctx, record, "meter_replaced", old_meter_km=args.old_meter_km,
                          new_meter_km=args.new_meter_km, note=args.note)
        ctx.emit("vehicle.meter_replaced", vin=args.vin, old_meter_km=args.old_meter_km,
                 new_meter_km=args.new_meter_km, certifier=ctx.signer)

    @tx_method(args=RepairArgs, roles={REPAIRER_ROLE})
    def repair(self, ctx: TxContext, args: RepairArgs) -> None:
        """Record an accident or a repair, with the odometer reading if taken."""
        record = self.get_active(ctx, args.vin)
        if args.odometer_km is not None:
            self.advance_odometer(record, args.odometer_km)
        self.append_entry(ctx, record, "accident" if args.accident else "repair",
                          description=args.description, odometer_km=args.odometer_km)
        ctx.emit("vehicle.repaired", vin=args.vin, accident=args.accident,
                 repairer=ctx.signer)

    @tx_method(args=ListArgs, roles={DEALER_ROLE})
    def list_for_sale(self, ctx: TxContext, args: ListArgs) -> None:
        """List a vehicle for sale at a price in KRW (replacing any earlier listing)."""
        record = self.get_active(ctx, args.vin)
        if args.odometer_km is not None:
            self.advance_odometer(record, args.odometer_km)
        record["listing"] = {"dealer": ctx.signer, "price_krw": args.price_krw,
                             "height": ctx.height}
        self.append_entry(ctx, record, "listed", price_krw=args.price_krw,
                          odometer_km=args.odometer_km)
        ctx.emit("vehicle.listed", vin=args.vin, price_krw=args.price_krw, dealer=ctx.signer)

    @tx_method(args=OfferArgs, roles=None)
    def offer_transfer(self, ctx: TxContext, args: OfferArgs) -> None:
        """Offer the vehicle to a buyer's key (signed by the current owner)."""
        record = self.get_active(ctx, args.vin)
        self.require_owner(ctx, record, "offer it")
        if args.buyer == record["owner"]:
            raise ServiceError("the buyer is already the owner")
        if record["offer"] is not None:
            raise ServiceError(f"vehicle {args.vin} already has a pending offer to "
                               f"{record['offer']['buyer'].hex()}; cancel it first")
        record["offer"] = {"buyer": args.buyer, "price_krw": args.price_krw,
                           "height": ctx.height, "tx": ctx.tx_hash}
        self.append_entry(ctx, record, "transfer_offered", seller=ctx.signer,
                          buyer=args.buyer, price_krw=args.price_krw)
        ctx.emit("vehicle.transfer_offered", vin=args.vin, seller=ctx.signer,
                 buyer=args.buyer)

    @tx_method(args=VinArgs, roles=None)
    def cancel_offer(self, ctx: TxContext, args: VinArgs) -> None:
        """Withdraw a pending transfer offer (signed by the owner or the offered buyer)."""
        record = self.get_active(ctx, args.vin)
        offer = record["offer"]
        if offer is None:
            raise ServiceError(f"vehicle {args.vin} has no pending offer")
        if ctx.signer not in (record["owner"], offer["buyer"]):
            raise ServiceError("only the owner or the offered buyer may cancel an offer")
        record["offer"] = None
        self.append_entry(ctx, record, "offer_cancelled", buyer=offer["buyer"])
        ctx.emit("vehicle.offer_cancelled", vin=args.vin, buyer=offer["buyer"],
                 by=ctx.signer)

    @tx_method(args=VinArgs, roles=None)
    def accept_transfer(self, ctx: TxContext, args: VinArgs) -> None:
        """Accept a pending offer (signed by the buyer): the vehicle becomes the buyer's."""
        record = self.get_active(ctx, args.vin)
        offer = record["offer"]
        if offer is None:
            raise ServiceError(f"vehicle {args.vin} has no pending offer: the owner offers "
                               "it first (offer_transfer)")
        if ctx.signer != offer["buyer"]:
            raise ServiceError("only the buyer named in the offer may accept it")
        seller = record["owner"]
        self.remove_owned(ctx, seller, args.vin)
        self.add_owned(ctx, ctx.signer, args.vin)
        record.update(owner=ctx.signer, offer=None, listing=None)
        self.append_entry(ctx, record, "transferred", seller=seller, buyer=ctx.signer,
                          price_krw=offer["price_krw"], offer_tx=offer["tx"])
        ctx.emit("vehicle.transferred", vin=args.vin, seller=seller, buyer=ctx.signer)

    @tx_method(args=VinArgs, roles=None)
    def scrap(self, ctx: TxContext, args: VinArgs) -> None:
        """Scrap a vehicle (signed by its owner or a registrar); no entry follows."""
        record = self.get_active(ctx, args.vin)
        if ctx.signer != record["owner"] and not ctx.has_role(ctx.signer, REGISTRAR_ROLE):
            raise ServiceError(f"only the owner or a {REGISTRAR_ROLE} may scrap a vehicle")
        owner = record["owner"]
        self.remove_owned(ctx, owner, args.vin)
        record.update(status=STATUS_SCRAPPED, offer=None, listing=None)
        self.append_entry(ctx, record, "scrapped", owner=owner)
        ctx.emit("vehicle.scrapped", vin=args.vin, by=ctx.signer)

    def get_active(self, ctx: TxContext, vin: str) -> dict[str, Any]:
        """Return a registered, unscrapped vehicle's record, or refuse."""
        record = ctx.state.get(compute_vehicle_key(vin))
        if record is None:
            raise ServiceError(f"vehicle {vin} is not registered")
        if record["status"] == STATUS_SCRAPPED:
            raise ServiceError(f"vehicle {vin} is scrapped; its history is closed")
        return record

    def require_owner(self, ctx: TxContext, record: dict[str, Any], action: str) -> None:
        if ctx.signer != record["owner"]:
            raise ServiceError(f"only the owner of {record['vin']} may {action}")

    def advance_odometer(self, record: dict[str, Any], reading_km: int) -> None:
        """Move the last odometer reading forward; refuse a reading below it."""
        if reading_km < record["odometer_km"]:
            raise ServiceError(
                f"odometer rollback refused: {reading_km} km is below the last recorded "
                f"{record['odometer_km']} km of {record['vin']}; a new meter is recorded "
                "first as a certified replacement (replace_meter)")
        record["odometer_km"] = reading_km

    def append_entry(self, ctx: TxContext, record: dict[str, Any], kind: str,
                     **fields: Any) -> None:
        """Write the next history entry and the record that chains it."""
        if record["entries"] >= HISTORY_ENTRIES_MAX:
            raise ServiceError(f"vehicle {record['vin']} has {HISTORY_ENTRIES_MAX} history "
                               "entries, the most one vehicle may hold")
        seq = record["entries"] + 1
        entry = {"seq": seq, "kind": kind, "height": ctx.height, "time_ms": ctx.time_ms,
                 "tx": ctx.tx_hash, "signer": ctx.signer, **fields}
        record["entries"] = seq
        record["history_digest"] = chain_digest(record["history_digest"], entry)
        ctx.state.set(compute_entry_key(record["vin"], seq), entry)
        ctx.state.set(compute_vehicle_key(record["vin"]), record)

    def add_owned(self, ctx: TxContext, owner: bytes, vin: str) -> None:
        owned = ctx.state.get(compute_owner_key(owner)) or []
        if len(owned) >= OWNED_VEHICLES_MAX:
            raise ServiceError(f"key {owner.hex()} already owns {OWNED_VEHICLES_MAX} "
                               "vehicles, the most one key may own")
        ctx.state.set(compute_owner_key(owner), [*owned, vin])

    def remove_owned(self, ctx: TxContext, owner: bytes, vin: str) -> None:
        owned = [one for one in ctx.state.get(compute_owner_key(owner)) or [] if one != vin]
        if owned:
            ctx.state.set(compute_owner_key(owner), owned)
        else:
            ctx.state.delete(compute_owner_key(owner))

    @query(args=VinQuery)
    def vehicle(self, state: ServiceState, args: VinQuery) -> dict[str, Any] | None:
        """Return a vehicle's record: owner, status, last odometer reading, offer, listing."""
        return state.get(compute_vehicle_key(args.vin))

    @query(args=VinQuery)
    def history(self, state: ServiceState, args: VinQuery) -> dict[str, Any] | None:
        """Return a vehicle's record and its full history, oldest entry first."""
        record = state.get(compute_vehicle_key(args.vin))
        if record is None:
            return None
        entries = [state.get(compute_entry_key(args.vin, seq))
                   for seq in range(1, record["entries"] + 1)]
        return {"vehicle": record, "entries": entries}

    @query(args=OwnerQuery)
    def owned(self, state: ServiceState, args: OwnerQuery) -> list[str]:
        """Return the VINs of the unscrapped vehicles a key owns."""
        return state.get(compute_owner_key(args.owner)) or []
