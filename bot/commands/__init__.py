"""Command-line entry points: the `incident-bot` subcommands (cli), the service commands (serve, worker, sweep,
db, dead-letters), plan previews, template checks, the demo and `init`."""
