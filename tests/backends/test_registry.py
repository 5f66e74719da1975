import importlib.metadata

import pytest

import hejax
from hejax import errors
from hejax.backends import clear


def test_clear_is_available():
    assert "clear" in hejax.backends.available()
    assert isinstance(hejax.backends.get("clear"), clear.ClearBackend)


def test_unknown_backend_names_the_fix():
    with pytest.raises(errors.BackendUnavailableError, match="not installed"):
        hejax.backends.get("no-such-backend")


def test_plugin_that_fails_to_import(monkeypatch):
    ep = importlib.metadata.EntryPoint(
        name="broken", value="hejax_no_such_module:Backend", group="hejax.backends"
    )
    monkeypatch.setattr(hejax.backends, "_entry_points", lambda: {"broken": ep})
    with pytest.raises(errors.BackendUnavailableError, match="failed to import"):
        hejax.backends.get("broken")
    assert "broken" not in hejax.backends.available()
    assert "ModuleNotFoundError" in hejax.backends.status()["broken"]


def test_openfhe_hint_names_the_interpreter(monkeypatch):
    ep = importlib.metadata.EntryPoint(
        name="openfhe", value="hejax_no_such_module:X", group="hejax.backends"
    )
    monkeypatch.setattr(hejax.backends, "_entry_points", lambda: {"openfhe": ep})
    monkeypatch.setattr(hejax.backends, "_loaded", {})
    with pytest.raises(errors.BackendUnavailableError, match="CPython 3.10"):
        hejax.backends.get("openfhe")


def test_register_in_process(monkeypatch):
    monkeypatch.setattr(hejax.backends, "_registered", {})

    class Mine(clear.ClearBackend):
        name = "mine"

    hejax.backends.register(Mine)
    assert "mine" in hejax.backends.available()
    with pytest.raises(errors.InvalidInputError):
        hejax.backends.register(object)


def test_get_passes_instances_through():
    be = hejax.backends.get("clear", preset="small")
    assert hejax.backends.get(be) is be
    with pytest.raises(errors.InvalidInputError):
        hejax.backends.get(be, preset="small")
