"""DSMR-reader-compatible model import paths."""
