"""contrib/soulsync.service: starts without a config file, keeps state private, and is
hardened (checked directive by directive, and by systemd-analyze where it is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "contrib" / "soulsync.service"


def _directives() -> dict[str, list[str]]:
    """Return the [Service] directives, each with every value it is given (in order)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_unit_starts_without_a_config_file():
    service = _directives()
    # No --config: that one must exist. SOULSYNC_CONFIG is read only when the file exists.
    assert service["ExecStart"] == ["/opt/soulsync/.venv/bin/soulsync serve"]
    assert "SOULSYNC_CONFIG=/etc/soulsync/soulsync.toml" in service["Environment"]


def test_state_is_private():
    service = _directives()
    assert service["UMask"] == ["0077"]
    assert service["StateDirectory"] == ["soulsync"]
    assert service["StateDirectoryMode"] == ["0700"]
    assert "SOULSYNC_DATA_DIR=/var/lib/soulsync" in service["Environment"]
    assert service["User"] == ["soulsync"]


HARDENING = {
    "NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true",
    "PrivateTmp": "true", "PrivateDevices": "true", "DevicePolicy": "closed",
    "PrivateMounts": "true", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
    "ProtectKernelTunables": "true", "ProtectKernelModules": "true",
    "ProtectKernelLogs": "true", "ProtectControlGroups": "true", "ProtectClock": "true",
    "ProtectHostname": "true", "ProtectProc": "invisible", "ProcSubset": "pid",
    "RestrictSUIDSGID": "true", "RestrictNamespaces": "true", "RestrictRealtime": "true",
    "RemoveIPC": "true", "LockPersonality": "true", "MemoryDenyWriteExecute": "true",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
}


def test_hardening_directives_are_present():
    service = _directives()
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert service["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    # "-": a music folder not mounted yet must not keep the service from starting.
    assert "-/srv/music" in service["ReadWritePaths"][0].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_rates_the_exposure_below_3():
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot rate a unit file offline: {result.stderr}")
    assert float(match.group(1)) < 3.0, result.stdout
