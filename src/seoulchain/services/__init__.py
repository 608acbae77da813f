"""The city's services: deterministic modules found via the `seoulchain.services` entry point."""
