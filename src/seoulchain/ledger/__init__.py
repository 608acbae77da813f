"""Ledger: transactions, blocks, commits, validator sets, and their storage."""
