"""The API process holds no key material: it runs as another user than the signer, reaches it
only through the socket (group-shared, mode 0660), and can neither read the keystore nor
even list the signer's directory.

A test where both processes share one uid could only show that the API *does* not open the
keystore (its settings, environment and open files), never that it *cannot*: the kernel
would let it. So the API runs here as `nobody` while the signer runs as root, as a
deployment runs them under two accounts. That needs root to start; CI runs as root.

The test's interpreter lives under root's home, which `nobody` may not enter: the API's
process gets a private mount namespace in which /root is an empty tmpfs holding only the
interpreter's directory (bound in read-only), then drops to `nobody` (util-linux `unshare`
and `setpriv`). Nothing else of its view of the machine changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from chaingate.config import Settings
from chaingate.signer.throwaway import THROWAWAY_PASSPHRASE, create_throwaway_signer
from tests.support.net import free_port
from tests.support.signer import SignerProcess, evm_policy

NOBODY = 65534  # nobody:nogroup on Debian
NOGROUP = "nogroup"
CLI = [sys.executable, "-m", "chaingate.entrypoints.cli"]
INTERPRETER_HOME = Path(sys.base_prefix).resolve()
# Binds the interpreter's tree into a fresh /root, then becomes nobody:nogroup.
_AS_NOBODY = (
    'set -e; T=$(mktemp -d); mkdir "$T/py"; mount --bind "$0" "$T/py"; '
    'mount -t tmpfs -o mode=755 tmpfs /root; mkdir -p "$0"; '
    'mount --bind -o ro "$T/py" "$0"; '
    f'exec setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups -- "$@"'
)


def _nobody(argv: list[str]) -> list[str]:
    if not INTERPRETER_HOME.is_relative_to("/root"):
        return ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", *argv]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _AS_NOBODY,
        str(INTERPRETER_HOME),
        *argv,
    ]


def _as_nobody(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _nobody(argv),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_gateways_settings_have_no_place_for_key_material() -> None:
    secret_words = ("keystore", "passphrase", "seed", "mnemonic", "pkcs11", "private_key")
    fields = [name for name in Settings.model_fields if any(w in name for w in secret_words)]
    assert fields == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the API as another user")
@pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("setpriv") is None,
    reason="needs util-linux unshare and setpriv",
)
def test_the_api_runs_as_another_user_and_cannot_read_the_keystore(
    signer_processes: list[SignerProcess],
) -> None:
    # Under /tmp, not pytest's per-user directory (0700 root): only the signer's own
    # directory and files may be what keeps `nobody` out.
    tmp_path = Path(tempfile.mkdtemp(prefix="chaingate-isolation-"))
    tmp_path.chmod(0o755)
    try:
        _run_isolated(tmp_path, signer_processes)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_isolated(tmp_path: Path, signer_processes: list[SignerProcess]) -> None:
    # The signer: root, state directory 0700, socket in a directory the gateway's group may
    # enter, mode 0660 in that group.
    state = create_throwaway_signer(tmp_path / "signer", {"eth": evm_policy(31337)})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.chown(run_dir, "root", NOGROUP)
    run_dir.chmod(0o750)
    socket = run_dir / "signer.sock"
    signer = SignerProcess(
        state, socket_path=socket, extra_args=["--socket-mode", "660", "--socket-group", NOGROUP]
    ).start()
    signer_processes.append(signer)

    # The gateway: nobody, its own directory, a copy of the token readable by its group.
    home = tmp_path / "gateway"
    home.mkdir()
    shutil.chown(home, NOBODY, NOBODY)
    token = run_dir / "token"
    shutil.copy(state.token_file, token)
    shutil.chown(token, "root", NOGROUP)
    token.chmod(0o640)
    networks = home / "networks.toml"
    networks.write_text(
        '[networks.eth]\nchain_id = 31337\nrpc_urls = ["http://127.0.0.1:9"]\n'
        'native_symbol = "ETH"\nnative_decimals = 18\nrequired_confirmations = 1\n'
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CHAINGATE_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'gateway.db'}",
        "CHAINGATE_NETWORKS_FILE": str(networks),
        "CHAINGATE_SECRET_KEY": "isolation-test-secret",
        "CHAINGATE_API_PORT": str(port),
        "CHAINGATE_SIGNER_SOCKET": str(socket),
        "CHAINGATE_SIGNER_TOKEN_FILE": str(token),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    created = _as_nobody([*CLI, "merchant", "create", "--name", "Shop", "--json"], env, home)
    assert created.returncode == 0, created.stderr
    api_key = json.loads(created.stdout)["api_key"]

    # As that user the keystore cannot be opened, nor the signer's directory listed.
    for probe in (
        f"open({str(state.keystore)!r}, 'rb').read()",
        f"__import__('os').listdir({str(state.state_dir)!r})",
    ):
        refused = _as_nobody([sys.executable, "-c", probe], env, home)
        assert refused.returncode != 0 and "PermissionError" in refused.stderr, probe

    log = (home / "api.log").open("wb")
    api = subprocess.Popen(
        _nobody([*CLI, "api"]),
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
            trust_env=False,
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                assert api.poll() is None, (home / "api.log").read_text()[-2000:]
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the API did not come up"
                time.sleep(0.2)
            # Through the socket the gateway gets what it needs: a managed account's xpub.
            answer = client.post("/v1/wallets", json={"network": "eth", "custody": "managed"})
            assert answer.status_code == 201, answer.text
            assert answer.json()["key_ref"].startswith("file:1:m/44'/60'/")

        # What the running API process has: its user, environment and open files.
        status = Path(f"/proc/{api.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uid_line.split()[1:]) == {str(NOBODY)}
        environ = Path(f"/proc/{api.pid}/environ").read_bytes().decode(errors="replace")
        assert str(state.state_dir) not in environ
        assert "PASSPHRASE" not in environ and THROWAWAY_PASSPHRASE.decode() not in environ
        for fd in Path(f"/proc/{api.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed while we looked
            assert not target.startswith(str(state.state_dir)), target
    finally:
        api.terminate()
        api.wait(15)
        log.close()
    owner = os.stat(state.keystore)
    assert (owner.st_uid, oct(owner.st_mode & 0o777)) == (0, "0o600")
