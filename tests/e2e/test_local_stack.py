"""``scripts/run``'s stack: every service up, a line per reading, Ctrl-C stops it all within seconds."""

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port, port_open, wait_for

READING = re.compile(r"^\d\d:\d\d:\d\d +\d+\.\d{3} +\d+\.\d{3} +\d+\.\d{3} .* SIM0000000000001$", re.M)

pytestmark = [pytest.mark.services]


class Output:
    """The stack's stdout, collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        assert process.stdout is not None
        self._stream = process.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.text += line


def test_the_local_stack_shows_readings_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    args = [
        sys.executable,
        str(REPO / "scripts" / "stack.py"),
        "--port",
        str(port),
        "--workdir",
        str(tmp_path),
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
    )
    output = Output(process)
    try:
        wait_for(lambda: len(READING.findall(output.text)) >= 2, 30, message=f"readings:\n{output.text}")
        for service in ("datalogger", "backend", "pvoutput", "plugins"):
            assert f"service {service} is online" in output.text
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    wait_for(lambda: output.text.endswith("stopped.\n"), 5, message=f"the last line:\n{output.text}")
    for service in ("datalogger", "backend", "pvoutput", "plugins"):
        assert f"service {service} is offline" in output.text  # each stopped cleanly, before the broker
    assert not port_open(port)
    assert (tmp_path / "dsmr.sqlite3").exists()
