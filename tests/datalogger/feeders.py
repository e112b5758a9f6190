"""Real stand-ins for a P1 port: a pty pair and a TCP server (what ser2net or a dongle is)."""

import contextlib
import os
import socket
import tty

from tests.helpers import free_port


class PtyPort:
    """A pseudo-terminal pair: the datalogger opens ``path``, the test writes to the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line editing before the datalogger configures it
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        """Write everything (a pty may take it in parts)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def close(self) -> None:
        """Close both ends: to the reader this is a USB adapter pulled out."""
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpFeeder:
    """A one-client TCP server on 127.0.0.1, the far end of ``socket://127.0.0.1:<port>``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self._server: socket.socket | None = None
        self.conn: socket.socket | None = None

    def listen(self) -> None:
        """Start accepting connections."""
        self._server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)

    def accept(self, timeout: float = 15.0) -> None:
        """Wait for the datalogger to connect."""
        assert self._server is not None
        self._server.settimeout(timeout)
        self.conn, _ = self._server.accept()

    def send(self, data: bytes) -> None:
        """Send bytes to the connected datalogger."""
        assert self.conn is not None
        self.conn.sendall(data)

    def drop(self) -> None:
        """Close the client connection (the dongle rebooted)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        """Stop serving."""
        self.drop()
        if self._server is not None:
            self._server.close()
            self._server = None
