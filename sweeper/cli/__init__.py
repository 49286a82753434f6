"""The command line: thin click commands over the API and the read-only side
(entry point :func:`sweeper.cli.console.main`)."""
