"""Consensus: the Tendermint algorithm as a pure state machine (no I/O, no clock).

See `seoulchain.consensus.machine` for how to drive it and docs/spec/consensus.md for the
wire formats, sign bytes, proposer selection, safety rules and WAL format.
"""
