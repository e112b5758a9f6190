"""dsmr_pvoutput."""
