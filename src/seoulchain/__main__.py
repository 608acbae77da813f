"""`python -m seoulchain` runs the command line."""

from seoulchain.cli.main import app

app()
