"""value_from_child: a value computed in a fork, and the child's exit passed on."""

import sys

import pytest

from dsmr_shared.child import value_from_child


def _exit(code: int | str | None) -> None:
    raise SystemExit(code)


def test_returns_the_childs_value_without_its_imports() -> None:
    def build() -> tuple[str, bool]:
        import this  # noqa: F401, PLC0415 - any module this process has not loaded

        return "built", "this" in sys.modules

    assert "this" not in sys.modules
    assert value_from_child(build) == ("built", True)
    assert "this" not in sys.modules


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (None, 0), (2, 2), ("bad: reason", 1)])
def test_a_child_that_exits_ends_this_process_with_its_code(
    code: int | str | None, expected: int, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        value_from_child(lambda: _exit(code))
    assert exited.value.code == expected
    if isinstance(code, str):
        assert code in capfd.readouterr().err


def test_a_child_that_raises_reports_it_and_exits_1(capfd: pytest.CaptureFixture[str]) -> None:
    def build() -> None:
        raise RuntimeError("broken settings loader")

    with pytest.raises(SystemExit) as exited:
        value_from_child(build)
    assert exited.value.code == 1
    assert "broken settings loader" in capfd.readouterr().err
