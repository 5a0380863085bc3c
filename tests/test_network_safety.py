"""Safe by default on a network: the app as `streamlit run streamlit_app.py` starts it (the repository's
.streamlit/config.toml) answers only this machine, refuses a page reached under a foreign host name
(DNS rebinding), and its pages read datasets only under the allowed folders."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from conftest import REPO
from e2e_helpers import free_port
from PIL import Image

from fer_core import data_roots as roots
from fer_core.runs import defaults

pytestmark = pytest.mark.slow


def non_loopback_ipv4() -> str | None:
    """This machine's address on its network (a UDP 'connect' sends nothing), or None when it has none."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))                 # the route out picks the address
            found.append(s.getsockname()[0])
        except OSError:
            pass
    try:
        found += [a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        pass
    return next((ip for ip in found if not ip.startswith("127.") and ip != "0.0.0.0"), None)


@pytest.fixture(scope="module")
def app_as_configured(tmp_path_factory):
    """The app started as the README says, with only a port of our choosing: no address given."""
    port = free_port()
    log = tmp_path_factory.mktemp("net") / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                                 f"--server.port={port}", "--server.fileWatcherType=none"],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "FER_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the app did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_another_host_cannot_reach_the_app(app_as_configured):
    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to test from")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ip, app_as_configured), timeout=5).close()
    # while this machine itself is served
    with urllib.request.urlopen(f"http://127.0.0.1:{app_as_configured}/_stcore/health", timeout=5) as r:
        assert r.status == 200


def websocket_status(port: int, host: str) -> int:
    """The status line of a WebSocket handshake to the app's stream, sent with the given Host header."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        reply = s.recv(4096).decode(errors="replace")
    return int(reply.split()[1]) if reply.startswith("HTTP/") else 0


def test_a_page_under_a_foreign_host_name_is_refused(app_as_configured):
    """DNS rebinding: evil.example resolving to 127.0.0.1 still sends Host: evil.example."""
    assert websocket_status(app_as_configured, f"localhost:{app_as_configured}") == 101
    assert websocket_status(app_as_configured, f"127.0.0.1:{app_as_configured}") == 101
    assert websocket_status(app_as_configured, f"evil.example:{app_as_configured}") != 101


# ---------------------------------------------------------------- allowed data folders
def test_default_roots_are_the_shared_data_and_the_user_data_folder(monkeypatch):
    monkeypatch.delenv(roots.ENV, raising=False)
    assert roots.allowed_roots() == [defaults.SHARED_DATA.resolve(), roots.USER_DATA.resolve()]
    assert roots.check_allowed(defaults.SHARED_DATA / "ckplus" / "CK+48") == \
        (defaults.SHARED_DATA / "ckplus" / "CK+48").resolve()
    for outside in ("/etc", "/etc/passwd", str(defaults.SHARED_DATA / ".." / ".." / "main" / "runs")):
        with pytest.raises(roots.OutsideDataRoots, match="outside the folders"):
            roots.check_allowed(outside)


def test_roots_from_the_environment_and_the_secret(monkeypatch, tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir(), other.mkdir()
    monkeypatch.setenv(roots.ENV, f"{mine}{os.pathsep}{other}")
    assert roots.check_allowed(mine / "faces") == (mine / "faces").resolve()
    with pytest.raises(roots.OutsideDataRoots, match=roots.ENV):
        roots.check_allowed(defaults.SHARED_DATA / "fer2013")     # the setting replaces the defaults
    assert roots.allowed_roots([str(other)]) == [other.resolve()]  # the secret wins over the environment
    with pytest.raises(roots.OutsideDataRoots):
        roots.check_allowed(mine, [str(other)])


def test_a_symlink_cannot_lead_out_of_an_allowed_folder(monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to("/etc")
    monkeypatch.setenv(roots.ENV, str(allowed))
    with pytest.raises(roots.OutsideDataRoots):
        roots.check_allowed(allowed / "escape")


def test_dataset_page_refuses_a_folder_outside_the_roots(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest
    outside = tmp_path / "outside"
    for cls in ("happy", "sad"):
        (outside / cls).mkdir(parents=True)
        Image.fromarray(np.full((48, 48), 128, np.uint8)).save(outside / cls / "0.png")
    monkeypatch.setenv(roots.ENV, str(tmp_path / "allowed"))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/dataset.py")
    at.session_state["dataset_path"] = str(outside)
    at.run()
    assert not at.exception
    assert any("outside the folders" in e.value and roots.ENV in e.value for e in at.error), \
        [e.value for e in at.error]
    assert not at.get("image") and not at.get("plotly_chart")            # nothing of the folder is shown
    monkeypatch.setenv(roots.ENV, str(tmp_path))                          # the same folder, now allowed
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("image")) == 2


def test_train_form_refuses_a_dataset_outside_the_roots(monkeypatch, tmp_path, ckplus):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv(roots.ENV, str(tmp_path / "allowed"))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    at.text_input(key="data").set_value(str(ckplus)).run()
    assert not at.exception
    assert any("outside the folders" in e.value for e in at.error), [e.value for e in at.error]
    assert not any("images" in s.value for s in at.success)               # no summary of the dataset
