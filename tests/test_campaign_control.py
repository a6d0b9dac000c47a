"""Issue 15, part 5: start, stop, pause, resume and hold of the campaign (campaign_control.py), checked against a
stand-in supervisor process: one whose command line reads like a supervisor's, named in .campaign/state.json."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnet_repro import campaign as C, campaign_control as CC
from resnet_repro import cli


@pytest.fixture
def fake_supervisor(monkeypatch, tmp_path):
    """A process whose command line reads like a supervisor's, in its own session, named in state.json."""
    monkeypatch.chdir(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "campaign", "run"],
                         start_new_session=True)
    (tmp_path / ".campaign").mkdir()
    C.write_state(dict(pid=p.pid, name="quarter", workers=1, threads=1))
    deadline = time.time() + 30
    while b"campaign" not in Path(f"/proc/{p.pid}/cmdline").read_bytes():  # until exec has replaced the fork
        assert time.time() < deadline
        time.sleep(0.05)
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_pause_hold_resume_and_stop(fake_supervisor, tmp_path):
    pid = fake_supervisor.pid
    assert CC.running_pid() == pid
    assert CC.pause(True) is True
    time.sleep(0.2)
    assert proc_state(pid) == "T"
    assert CC.pause(True) is False  # already paused: nothing to do, and hold will not resume it
    assert CC.pause(False) is True
    time.sleep(0.2)
    assert proc_state(pid) in "RS"

    seen = tmp_path / "seen"
    rc = CC.hold([sys.executable, "-c", f"open({str(seen)!r}, 'w').write(open('/proc/{pid}/stat').read())"])
    assert rc == 0
    assert seen.read_text().rsplit(")", 1)[1].split()[0] == "T"  # the campaign was stopped while the command ran
    time.sleep(0.2)
    assert proc_state(pid) in "RS"  # and runs again after it

    assert CC.stop(timeout_s=10) == 0
    fake_supervisor.wait(10)
    assert fake_supervisor.returncode is not None and CC.running_pid() is None


def test_hold_without_a_campaign_just_runs_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CC.hold([sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert cli.main(["campaign", "hold", "--", sys.executable, "-c", "pass"]) == 0


def test_start_refuses_a_second_campaign(fake_supervisor):
    with pytest.raises(ValueError, match="already running"):
        CC.start("quarter", 1, 1, None)
