"""Execution: the deterministic state transition from one block to the next."""
