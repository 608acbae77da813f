"""The city's services: deterministic modules found through the `seoulchain.services` entry point."""
