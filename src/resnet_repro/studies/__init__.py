"""The studies beyond the paper, one module each: measurement, table, verdict and figure together.

beyond.py collects, draws and reports them; cli.py exposes their commands."""
