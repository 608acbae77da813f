"""What a party that trusts only the genesis file checks: the light client (headers proven
by commits, skipping on 1/3 trust, fork detection), self-contained proof bundles, and state
sync snapshots verified against a proven header.

It sits above consensus (it verifies commits) and below the node and the client, which
both use it: the node to restore a snapshot, the client and the CLI to prove and verify.
"""
