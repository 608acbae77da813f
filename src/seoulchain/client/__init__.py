"""Client SDK: build and sign transactions, talk to nodes, verify what they answer."""
