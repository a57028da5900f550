"""The systemd units and the install script, checked with systemd's own tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
UNITS = ROOT / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None and not os.environ.get("CI"), reason="systemd-analyze is not installed (scripts/setup installs it)"
)


def unit_copy(tmp_path: Path, name: str, instance: str = "") -> Path:
    """The unit as installed, with ExecStart pointing at this checkout's zfsync (verify checks it exists)."""
    zfsync = Path(sys.executable).with_name("zfsync")
    text = (UNITS / name).read_text().replace("/opt/zfsync/bin/zfsync", str(zfsync))
    target = tmp_path / name
    target.write_text(text)
    return tmp_path / name.replace("@.", f"@{instance}.") if instance else target


@needs_analyze
@pytest.mark.parametrize(("name", "instance"), [("zfsync.service", ""), ("zfsync@.service", "shop")])
def test_units_pass_systemd_analyze_verify(tmp_path, name, instance):
    unit = unit_copy(tmp_path, name, instance)
    result = subprocess.run([ANALYZE or "systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
@pytest.mark.parametrize(("name", "instance"), [("zfsync.service", ""), ("zfsync@.service", "shop")])
def test_units_are_rated_two_or_lower_by_systemd_analyze_security(tmp_path, name, instance):
    unit = unit_copy(tmp_path, name, instance)
    result = subprocess.run(
        [ANALYZE or "systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_units_carry_the_service_contract():
    for name in ("zfsync.service", "zfsync@.service"):
        text = (UNITS / name).read_text()
        for line in (
            "Type=notify",
            "WatchdogSec=",
            "Restart=on-failure",
            "StartLimitBurst=",
            "User=zfsync",
            "EnvironmentFile=",
            "NoNewPrivileges=yes",
            "ConfigurationDirectoryMode=0750",  # what the installer makes it: no mode warning at start
        ):
            assert line in text, f"{name} lacks {line}"
    instance = (UNITS / "zfsync@.service").read_text()
    assert "--config /etc/zfsync/%i/config.toml" in instance and "StateDirectory=zfsync/%i" in instance


def test_install_script_dry_run_lists_every_step():
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install"), "--dry-run", "--instance", "shop"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    assert "python3 -m venv /opt/zfsync" in out
    assert "/etc/zfsync/shop/config.toml" in out and "/var/lib/zfsync/shop/zfsync.db" in out
    assert "zfsync@.service /etc/systemd/system/" in out and "systemctl daemon-reload" in out
    assert "systemctl enable --now zfsync@shop.service" in out
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "install"), "--instance", "Bad Name"], capture_output=True)
    assert bad.returncode == 2 and b"must be lower-case" in bad.stderr


def test_install_script_rewrites_the_documented_store_path_line():
    # The install script edits the line `path = ...` of config.example.toml; it must stay unique.
    lines = [line for line in (ROOT / "config.example.toml").read_text().splitlines() if line.startswith("path = ")]
    assert lines == ['path = "/var/lib/zfsync/zfsync.db"']


def test_the_wheel_a_production_vm_installs_holds_no_developers_tools():
    import tomllib

    from setuptools import find_packages

    # The packages setuptools puts in the wheel, found the way pyproject.toml tells it to.
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=found["include"])
    assert "zfsync" in packages and "zfsync.sim" in packages  # zfsync sim and zfsync demo stay
    assert (ROOT / "zfsync" / "sim" / "fakes.py").exists()  # the ports' in-memory fakes ship, as DESIGN has it
    assert (ROOT / "devtools" / "crashtest.py").exists() and not any(p.startswith("devtools") for p in packages)
    # Every folder of the package is a package the wheel takes (a folder without __init__.py is left out).
    folders = {p.parent for p in (ROOT / "zfsync").rglob("*.py") if "__pycache__" not in p.parts}
    assert {".".join(f.relative_to(ROOT).parts) for f in folders} <= set(packages)
    shipped = [f.name for p in packages for f in (ROOT / p.replace(".", "/")).glob("*.py")]
    assert not {"crashtest.py", "bench.py", "pgcluster.py", "daemonbench.py"} & set(shipped)
