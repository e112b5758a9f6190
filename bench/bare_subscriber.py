"""The floor for the end-to-end benchmark: python + paho and nothing else, subscribed to raw telegrams.

python bench/bare_subscriber.py PORT FILE   # appends "<time.time()> <telegram stamp>" per message
"""

import os
import re
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

STAMP = re.compile(rb"0-0:1\.0\.0\((\d{12}[SW])\)")


def main(port: int, out: str) -> None:
    """Subscribe at QoS 1 and stamp each message's arrival in ``on_message``."""
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        at = time.time()
        match = STAMP.search(msg.payload)
        os.write(fd, f"{at} {match.group(1).decode() if match else '?'}\n".encode())

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe("dsmr/dsmr_datalogger/signals/raw_telegram/+", 1)
    client.connect("127.0.0.1", port)
    client.loop_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
