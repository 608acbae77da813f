"""Service workloads for the ledger benchmark: valid pre-signed txs of each city service.

Each workload names the genesis roles its signers need (the benchmark chain is fresh, so
they are granted in genesis), the untimed setup blocks its load depends on (a campaign, the
contracts, the citizens' first points), and then signs its timed txs one at a time:

- vehicle: a registration, then inspections with a rising odometer, by a key that is both
  `vehicle.registrar` and `vehicle.inspector` (its nonces order each car's entries);
- document: issues of random document hashes by `document.issuer` keys;
- funds: donations into one campaign by `funds.collector` keys;
- labor: work records by employers on contracts their workers accepted in setup;
- mileage: mints of a point to citizens by `mileage.minter` keys alternating with transfers
  of a point between citizens (who got their first points in setup);
- notary: the ledger benchmark's bare anchors.

The city mix interleaves them in the fixed ratio `CITY_MIX_WEIGHTS`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction

# The same expiry as the benchmark's anchors: far beyond any bench chain's height.
EXPIRY_HEIGHT = 2**40
# Signers per workload: as the anchor load, enough that a block of thousands of txs stays
# within each signer's mempool nonce window.
WORKLOAD_SIGNERS = 64
# A car's history in the load: its registration and then this many inspections.
INSPECTIONS_PER_VEHICLE = 4
ODOMETER_STEP_KM = 10_000
# Points each citizen gets in setup: far more than the load's one-point transfers take.
CITIZEN_POINTS = 1_000_000
# The 2026 minimum hourly wage (labor's default parameter) is 10,320 KRW; the load pays more.
BENCH_HOURLY_WAGE_KRW = 12_000
WORK_PERIOD = ("2026-01-05", "2026-01-05")
WORK_MINUTES = 480
DONATION_KRW = 10_000
# Txs of each service in every ten of the city mix: the record-keeping services (vehicle
# histories, issued documents, mileage) carry most of the city's traffic.
CITY_MIX_WEIGHTS = {"vehicle": 2, "document": 2, "funds": 1, "labor": 1, "mileage": 2,
                    "notary": 2}
MIXES = {"city": CITY_MIX_WEIGHTS}
SERVICE_NAMES = tuple(CITY_MIX_WEIGHTS)


class Signers:
    """Keys with their next nonces, each signing its txs in order."""

    def __init__(self, count: int = WORKLOAD_SIGNERS) -> None:
        self.keys = [SigningKey.generate() for _ in range(count)]
        self.nonces = [1] * count

    def sign(self, slot: int, chain_id: str, service: str, method: str,
             args: Mapping[str, object]) -> bytes:
        """Sign a tx by the `slot`-th key with its next nonce."""
        nonce = self.nonces[slot]
        self.nonces[slot] += 1
        return Transaction.create(self.keys[slot], chain_id=chain_id, nonce=nonce,
                                  expiry_height=EXPIRY_HEIGHT, service=service,
                                  method=method, args=dict(args)).encode()

    def public_keys(self) -> tuple[bytes, ...]:
        return tuple(key.public_key for key in self.keys)


class Workload:
    """A service's load: genesis roles, untimed setup blocks, then one timed tx at a time."""

    service = ""

    def __init__(self) -> None:
        self.signers = Signers()
        self.count = 0

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        return {}

    def setup_blocks(self, chain_id: str) -> list[list[bytes]]:
        return []

    def sign_next(self, chain_id: str) -> bytes:
        """Sign the workload's next timed tx."""
        slot = self.count % len(self.signers.keys)
        round_ = self.count // len(self.signers.keys)
        self.count += 1
        return self.sign(chain_id, slot, round_)

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        raise NotImplementedError


class NotaryWorkload(Workload):
    service = "notary"

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        return {"notary.issuer": self.signers.public_keys()}

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        return self.signers.sign(slot, chain_id, "notary", "anchor",
                                 {"doc_hash": os.urandom(32), "kind": "bench"})


class DocumentWorkload(Workload):
    service = "document"

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        return {"document.issuer": self.signers.public_keys()}

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        return self.signers.sign(slot, chain_id, "document", "issue",
                                 {"doc_hash": os.urandom(32), "kind": "certificate"})


class VehicleWorkload(Workload):
    service = "vehicle"

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        keys = self.signers.public_keys()
        return {"vehicle.registrar": keys, "vehicle.inspector": keys}

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        car, step = divmod(round_, INSPECTIONS_PER_VEHICLE + 1)
        # A Korean VIN (WMI "KMH", region K: no check digit), unique per signer and car.
        vin = f"KMH{slot:03d}{car:011d}"
        if step == 0:
            return self.signers.sign(slot, chain_id, "vehicle", "register",
                                     {"vin": vin, "model": "bench"})
        return self.signers.sign(slot, chain_id, "vehicle", "inspect",
                                 {"vin": vin, "odometer_km": step * ODOMETER_STEP_KM,
                                  "result": "pass"})


class FundsWorkload(Workload):
    service = "funds"

    def __init__(self) -> None:
        super().__init__()
        self.organiser = Signers(1)

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        return {"funds.organiser": self.organiser.public_keys(),
                "funds.collector": self.signers.public_keys()}

    def setup_blocks(self, chain_id: str) -> list[list[bytes]]:
        return [[self.organiser.sign(0, chain_id, "funds", "register_campaign",
                                     {"purpose": "bench campaign",
                                      "target_krw": 10**15})]]

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        # The fresh chain's first campaign is number 1.
        return self.signers.sign(slot, chain_id, "funds", "donate",
                                 {"campaign": 1, "amount_krw": DONATION_KRW,
                                  "purpose": "donation"})


class LaborWorkload(Workload):
    service = "labor"

    def __init__(self) -> None:
        super().__init__()
        self.workers = Signers()
        self.contracts = [os.urandom(32) for _ in self.signers.keys]

    def setup_blocks(self, chain_id: str) -> list[list[bytes]]:
        proposals = [self.signers.sign(slot, chain_id, "labor", "propose", {
            "contract_hash": contract, "worker": self.workers.keys[slot].public_key,
            "hourly_wage_krw": BENCH_HOURLY_WAGE_KRW, "start_date": WORK_PERIOD[0]})
            for slot, contract in enumerate(self.contracts)]
        acceptances = [self.workers.sign(slot, chain_id, "labor", "accept",
                                         {"contract_hash": contract})
                       for slot, contract in enumerate(self.contracts)]
        return [proposals, acceptances]

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        return self.signers.sign(slot, chain_id, "labor", "record_work", {
            "contract_hash": self.contracts[slot], "period_start": WORK_PERIOD[0],
            "period_end": WORK_PERIOD[1], "minutes": WORK_MINUTES})


class MileageWorkload(Workload):
    service = "mileage"

    def __init__(self) -> None:
        super().__init__()
        self.citizens = Signers()

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        return {"mileage.minter": self.signers.public_keys()}

    def setup_blocks(self, chain_id: str) -> list[list[bytes]]:
        return [[self.signers.sign(slot, chain_id, "mileage", "mint", {
            "to": citizen, "amount": CITIZEN_POINTS, "reason": "bench"})
            for slot, citizen in enumerate(self.citizens.public_keys())]]

    def sign(self, chain_id: str, slot: int, round_: int) -> bytes:
        citizens = self.citizens.public_keys()
        if round_ % 2 == 0:
            return self.signers.sign(slot, chain_id, "mileage", "mint", {
                "to": citizens[slot], "amount": 1, "reason": "civic participation"})
        return self.citizens.sign(slot, chain_id, "mileage", "transfer", {
            "to": citizens[(slot + 1) % len(citizens)], "amount": 1})


WORKLOADS: dict[str, type[Workload]] = {
    cls.service: cls for cls in (VehicleWorkload, DocumentWorkload, FundsWorkload,
                                 LaborWorkload, MileageWorkload, NotaryWorkload)}


class MixWorkload(Workload):
    """Several services' workloads interleaved in a fixed ratio on one chain."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        self.count = 0
        self.parts = {name: WORKLOADS[name]() for name in weights}
        self.cycle = [name for name, weight in weights.items() for _ in range(weight)]

    def roles(self) -> dict[str, tuple[bytes, ...]]:
        roles: dict[str, tuple[bytes, ...]] = {}
        for part in self.parts.values():
            for role, keys in part.roles().items():
                roles[role] = roles.get(role, ()) + keys
        return roles

    def setup_blocks(self, chain_id: str) -> list[list[bytes]]:
        batches = [part.setup_blocks(chain_id) for part in self.parts.values()]
        return [list(itertools.chain.from_iterable(block))
                for block in itertools.zip_longest(*batches, fillvalue=[])]

    def sign_next(self, chain_id: str) -> bytes:
        name = self.cycle[self.count % len(self.cycle)]
        self.count += 1
        return self.parts[name].sign_next(chain_id)


def build_workload(service: str) -> Workload:
    """Return a fresh workload of `service`, or refuse a name no workload covers."""
    if service not in WORKLOADS:
        raise LocalError(f"no benchmark workload for service {service!r}; choose from "
                         f"{', '.join(SERVICE_NAMES)}")
    return WORKLOADS[service]()


def check_mix(name: str) -> Mapping[str, int]:
    """Return the weights of the mix called `name`, or refuse an unknown one."""
    if name not in MIXES:
        raise LocalError(f"no service mix {name!r}; choose from {', '.join(MIXES)}")
    return MIXES[name]


def list_runs(services: Sequence[str], mix: str | None) -> list[tuple[str, Workload]]:
    """Return the runs `--service`/`--mix` ask for: each service alone, then the mix."""
    names = list(dict.fromkeys(services))
    weights = check_mix(mix) if mix is not None else None
    if weights is not None and not names:
        names = list(weights)
    runs = [(name, build_workload(name)) for name in names]
    if weights is not None:
        runs.append((f"mix-{mix}", MixWorkload(weights)))
    return runs
