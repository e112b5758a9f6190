"""What every dsmr-mqtt service uses: settings, the MQTT bus, signals, envelope, topics, framing."""
