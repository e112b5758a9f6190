"""Compute a value in a forked child process: whatever the child imports never loads here.

The datalogger validates its settings this way. Validation needs pydantic, which would cost the
long-running process about 12 MiB of its 35 MB budget; the child exits as soon as it has handed
over plain, picklable values.
"""

import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def value_from_child(build: Callable[[], T]) -> T:
    """Return ``build()`` as computed in a forked child.

    When the child ends without a value (``--help``, a bad setting: it printed why), this process
    exits with the child's exit code. Call it before starting threads: it forks.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        os._exit(_build_and_send(build, write_end))
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0 or not data:
        raise SystemExit(code)
    # Unpickling is safe here: the bytes come from our own fork, through a pipe only it holds.
    value: T = pickle.loads(data)  # noqa: S301
    return value


def _build_and_send(build: Callable[[], object], fd: int) -> int:
    """In the child: build, pickle into the pipe, and return the exit code."""
    try:
        value = build()
        with os.fdopen(fd, "wb") as pipe:
            pickle.dump(value, pipe)
        return 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)  # noqa: T201
            return 1
        return exc.code or 0
    except BaseException:
        traceback.print_exc()
        return 1
    finally:  # os._exit skips the flushing a normal exit does
        sys.stdout.flush()
        sys.stderr.flush()
