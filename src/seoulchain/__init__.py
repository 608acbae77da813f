"""seoulchain: a permissioned BFT ledger for a city's agencies, with proofs anyone can check."""

__version__ = "0.1.0"
