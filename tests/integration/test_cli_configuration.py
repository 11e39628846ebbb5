"""What an operator sees: `chaingate` reads the networks file through the family table, and a
network of an unknown kind stops it before it touches the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
REPO = README.parent


def chaingate(tmp_path: Path, networks: str, *argv: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "networks.toml"
    path.write_text(networks)
    env = {
        **os.environ,
        "CHAINGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "CHAINGATE_NETWORKS_FILE": str(path),
        "CHAINGATE_SECRET_KEY": "cli-test-secret",
    }
    return subprocess.run(
        [sys.executable, "-m", "chaingate.entrypoints.cli", *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_unknown_kind_stops_the_command_and_names_the_known_kinds(tmp_path: Path) -> None:
    networks = '[networks.tron]\nkind = "tron"\nrpc_urls = ["http://127.0.0.1:9"]\n'
    done = chaingate(tmp_path, networks, "merchant", "create", "--name", "Shop")
    assert done.returncode == 2, done.stderr
    assert "unknown kind 'tron'" in done.stderr
    assert "known kinds: bitcoin, evm" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "gateway.db").exists()  # refused before anything was written


def test_the_readme_networks_files_start_the_gateway_commands(tmp_path: Path) -> None:
    text = README.read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```toml")[1:]]
    # The README's other TOML (the signer's policy file) is no networks file.
    examples = [block for block in blocks if block.lstrip("\n").startswith("# networks.toml")]
    assert len(examples) >= 2
    done = chaingate(
        tmp_path, "\n".join(examples), "merchant", "create", "--name", "Shop", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert '"merchant_id": "mer_' in done.stdout
