"""Deterministic CBOR: the one encoding of everything signed or hashed."""

from seoulchain.codec.cbor import decode, encode

__all__ = ["decode", "encode"]
