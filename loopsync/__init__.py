"""loopsync: keeps Benbria's Loop guest messaging in step with a hotel PMS database."""

__version__ = "0.1.0"
