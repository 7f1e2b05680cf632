"""``python -m tsweep`` runs the CLI."""
from tsweep.cli import main

main()
