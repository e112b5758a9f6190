"""What the plugin runner's tests share: a recording HTTP server, a signal sender, a runner process."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from dsmr_shared.envelope import Envelope
from dsmr_shared.topics import signal_topic
from tests.helpers import Mosquitto, Probe, ServiceProcess, console_script, wait_for

READY = "receiving signals"
RAW_TELEGRAM = "dsmr_datalogger.signals.raw_telegram"
BACKEND_CALLED = "dsmr_backend.signals.backend_called"
POST_SAVE = "dsmr_backend.signals.post_save"
PVOUTPUT_UPLOAD = "dsmr_pvoutput.signals.pvoutput_upload"


@dataclass
class Request:
    """One request the HTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The body as an urlencoded form."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Recorder:
    """Requests seen by a local HTTP server; answers ``status``."""

    url: str = ""
    status: int = 200
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self) -> list[Request]:
        """A copy of the requests so far."""
        with self.lock:
            return list(self.requests)


@contextmanager
def http_server() -> Iterator[Recorder]:
    """A real HTTP server on 127.0.0.1 in a thread that records every POST."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with recorder.lock:
                recorder.requests.append(Request("POST", self.path, dict(self.headers.items()), body))
            self.send_response(recorder.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


def send(probe: Probe, signal: str, sender: str, **kwargs: Any) -> None:
    """Send a signal the way a service does: an envelope on its topic, QoS 1, acknowledged."""
    envelope = Envelope.new(signal, sender, kwargs)
    probe.publish(signal_topic("dsmr", signal, sender), envelope.to_json(), qos=1)


def write_plugin(folder: Path, name: str, source: str) -> Path:
    """Write a plugin module ``name``.py into ``folder``."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def recorder_plugin(out: Path, signal: str = RAW_TELEGRAM, key: str = "seq", tag: str = "") -> str:
    """Source of a plugin that appends ``kwargs[key]`` (and a tag) to ``out``, one line per event."""
    module, _, name = signal.rpartition(".")
    return f"""
        from {module} import {name}

        def record(sender, **kwargs):
            with open({str(out)!r}, "a") as f:
                f.write({tag!r} + str(kwargs[{key!r}]) + "\\n")

        {name}.connect(record)
    """


def lines(path: Path) -> list[str]:
    """The lines of ``path`` (empty when it does not exist yet)."""
    return path.read_text().splitlines() if path.exists() else []


class RunnerProcess(ServiceProcess):
    """A ServiceProcess whose output stays readable after ``close``."""

    _final: str | None = None

    def output(self) -> str:
        """Everything the process printed (also after close)."""
        return self._final if self._final is not None else super().output()

    def close(self) -> None:
        """Stop the process and drop its log file, keeping the text."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self._final = self.output()
        super().close()


def runner_process(broker: Mosquitto, modules: Path, plugins: list[str], **env: str) -> RunnerProcess:
    """The real ``dsmr-plugins`` console script, configured for ``broker`` and ``modules``."""
    return RunnerProcess(
        [console_script("dsmr-plugins")],
        {
            **broker.env(),
            "DSMR_PLUGINS_DIR": str(modules),
            "DSMRREADER_PLUGINS": ",".join(plugins),
            "DSMR_MQTT_CLIENT_ID": f"plugins-test-{broker.port}",
            "DSMR_PLUGINS_STOP_TIMEOUT": "2",
            **env,
        },
        cwd=modules.parent,
    )


@contextmanager
def running(process: RunnerProcess) -> Iterator[RunnerProcess]:
    """Start the runner, wait until its subscriptions are active, stop it afterwards."""
    process.start()
    try:
        process.wait_for_output(READY, timeout=20)
        yield process
    finally:
        process.close()


def wait_lines(path: Path, count: int, timeout: float = 20.0) -> list[str]:
    """Wait until ``path`` has at least ``count`` lines; return them."""
    wait_for(lambda: len(lines(path)) >= count, timeout, message=f"{count} lines in {path.name}")
    return lines(path)
