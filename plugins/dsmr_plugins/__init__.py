"""dsmr_plugins: the plugin runner; runs DSMR-reader style plugins on signals that arrive over MQTT."""
