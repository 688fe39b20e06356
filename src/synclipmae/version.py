"""The package version, in one place: records, checkpoints and `synclipmae --version` read it here."""
__version__ = "0.1.0"
