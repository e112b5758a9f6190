"""dsmr_datalogger."""
