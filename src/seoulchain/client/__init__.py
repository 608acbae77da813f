"""Client SDK: build and sign transactions, talk to nodes, verify what they answer.

`Seoulchain` (client/sdk.py, docs/sdk.md) is the application-facing facade.
"""

from seoulchain.client.sdk import Seoulchain, TxFailed, create_key, load_key

__all__ = ["Seoulchain", "TxFailed", "create_key", "load_key"]
