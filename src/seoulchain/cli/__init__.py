"""The `seoulchain` command line."""
