"""Shipped recipe files: one TOML file per course experiment (see `beanstrain list`)."""
