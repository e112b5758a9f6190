"""dsmr_backend."""
