"""DSMR-reader's example plugin, byte for byte, runs unchanged from a user's modules folder."""

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.helpers import REPO, Mosquitto, Probe, wait_for
from tests.plugins.support import PVOUTPUT_UPLOAD, http_server, runner_process, running, send

REFERENCE = REPO.parent / "shared" / "reference" / "pvoutput_plugin.py"


def test_reference_pvoutput_plugin_posts_the_signals_data(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    shutil.copyfile(REFERENCE, modules / "pvoutput.py")
    assert (modules / "pvoutput.py").read_bytes() == REFERENCE.read_bytes()
    data = {"d": "20261125", "t": "18:35", "v1": "12345", "v2": "2100", "v3": "9876", "v6": "231.4"}
    with http_server() as server:
        api_url = f"{server.url}/service/r2/addstatus.jsp"
        process = runner_process(
            mosquitto, modules, ["dsmr_plugins.modules.pvoutput"], DSMR_PVOUTPUT_API_URL=api_url
        )
        with running(process):
            send(mqtt_client(), PVOUTPUT_UPLOAD, "123456", data=data)
            (request,) = wait_for(server.seen, message="the plugin's POST")
            output = process.wait_for_output("Uploading the same data to PVOutput using plugin")
    assert request.path == "/service/r2/addstatus.jsp"
    assert request.form == data
    assert request.headers["X-Pvoutput-Apikey"] == "XXXXX"
    assert request.headers["X-Pvoutput-SystemId"] == "YYYYY"
    assert "plugin dsmr_plugins.modules.pvoutput loaded" in output
    assert "PVOutput upload failed" not in output
