"""Verifiable credentials: W3C VC Data Model 2.0 documents, their proofs and status lists.

A layer beside `proofs/`, importing only `codec/` and `crypto/`:
- `loader.py`: the offline JSON-LD document loader (shipped contexts only);
- `integrity.py`: `sign` and `verify` of Data Integrity `eddsa-rdfc-2022` proofs, with
  the bounds every document passes before it is canonicalised;
- `statuslist.py`: W3C Bitstring Status List v1.0 (encode, decode, bits, random index
  allocation, the status list credential);
- `errors.py`: the typed errors of all of the above.
"""
