"""`manage.py check --deploy` with exactly the production block of the README: 0 warnings.

Before issue 12, HSTS and the HTTPS redirect could not be set by configuration at all, so
check --deploy kept security.W004 and security.W008 whatever an operator did."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def production_block() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- production-env[^>]*-->\s*```sh\n(.*?)```", readme, re.S)
    assert match, "README.md lost its production-env block"
    pairs = [line.split("=", 1) for line in match.group(1).splitlines() if line.strip()]
    return {name.strip(): value.strip() for name, value in pairs}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    env.update(production_block())
    env["KETACLINIC_VAR_DIR"] = str(tmp_path)  # where the generated secret key goes
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_block_turns_on_https_hsts_and_proxy_trust() -> None:
    block = production_block()
    assert block["SECURE_SSL_REDIRECT"] == "1"
    assert int(block["SECURE_HSTS_SECONDS"]) >= 31536000
    assert block["TRUST_X_FORWARDED_PROTO"] == "1"
    assert block["DEBUG"] == "0"
