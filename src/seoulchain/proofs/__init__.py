"""Proofs anyone can check offline: the RFC 9162 transparency log tree and its proofs."""
