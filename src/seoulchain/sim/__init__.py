"""The deterministic fault simulator: real validator cores on a seeded virtual network.

See docs/simulation.md. `Cluster` is the scenario DSL; `run_seed` runs one seed of a
campaign (safety phase under faults, liveness phase after them, then the checkers).
"""

from seoulchain.sim.campaign import SeedResult, run_seed
from seoulchain.sim.cluster import Cluster, LivenessFailure, SafetyViolation

__all__ = ["Cluster", "LivenessFailure", "SafetyViolation", "SeedResult", "run_seed"]
