"""What the operator reads when `mlgate serve` cannot start: one line naming the step that failed
and every cause once; and, when an identity provider cannot be reached at start-up, the log line
says why (the network error, not only "error sending request")."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import mlgate_stack


def _serve_fails(stack, *args: str) -> str:
    """Runs `mlgate serve` on the session's store with `args`, expects it to stop, and returns the
    one error line it printed (log lines may come around it)."""
    result = subprocess.run(
        [str(stack.binary), "serve", "--data-dir", str(stack.data_dir),
         "--upstream", stack.mlflow_url, *args],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mlgate: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _oidc_config(path: Path, issuer: str) -> Path:
    path.write_text(f"""
[[issuer]]
name = "corp"
issuer = "{issuer}"
audiences = ["mlflow"]
""")
    return path


def test_an_unreadable_certificate_names_the_file_and_the_cause(stack, tmp_path):
    missing = tmp_path / "missing.pem"
    line = _serve_fails(stack, "--tls-cert", str(missing), "--tls-key", str(missing))
    assert line.startswith(f"mlgate: cannot read the certificate chain {missing}: "), line
    assert line.count("No such file or directory") == 1, line


def test_an_unopenable_audit_log_names_the_file_and_the_cause(stack, tmp_path):
    audit = tmp_path / "audit.log"
    audit.mkdir()
    line = _serve_fails(stack, "--audit-log", str(audit))
    assert line.startswith(f"mlgate: cannot open the audit log {audit}: "), line
    assert line.count("Is a directory") == 1, line


def test_a_missing_oidc_configuration_names_the_file_and_the_cause(stack, tmp_path):
    config = tmp_path / "oidc.toml"
    line = _serve_fails(stack, "--audit-log", str(tmp_path / "audit.log"),
                        "--oidc-config", str(config))
    assert line == (f"mlgate: cannot read the OIDC configuration {config}: "
                    "No such file or directory (os error 2)"), line


def test_an_unsafe_issuer_url_names_the_issuer_and_the_rule(stack, tmp_path):
    config = _oidc_config(tmp_path / "oidc.toml", "http://idp.example.com")
    line = _serve_fails(stack, "--audit-log", str(tmp_path / "audit.log"),
                        "--oidc-config", str(config))
    assert line.startswith(f"mlgate: {config}: issuer \"corp\": issuer: "), line
    assert "must be an https:// URL" in line, line


def test_a_busy_port_names_the_address_and_the_cause(stack, tmp_path):
    line = _serve_fails(stack, "--audit-log", str(tmp_path / "audit.log"),
                        "--listen", f"127.0.0.1:{stack.port}")
    assert line.startswith(f"mlgate: cannot listen on 127.0.0.1:{stack.port}: "), line
    assert line.count("Address already in use") == 1, line


def test_an_unreachable_identity_provider_is_logged_with_its_cause(stack, tmp_path):
    closed = mlgate_stack.free_port()
    config = _oidc_config(tmp_path / "oidc.toml", f"http://127.0.0.1:{closed}")
    gateway = stack.replica()
    gateway.start_gateway(extra_args=["--oidc-config", str(config)])
    try:
        log = gateway.mlgate_log.read_text()
    finally:
        gateway.stop_gateway()
    warnings = [line for line in log.splitlines() if "OIDC issuer not reachable" in line]
    assert len(warnings) == 1, log
    assert f"GET http://127.0.0.1:{closed}/.well-known/openid-configuration" in warnings[0]
    assert "Connection refused" in warnings[0], warnings[0]


def test_the_admin_listener_is_refused_on_the_public_address(stack, tmp_path):
    port = mlgate_stack.free_port()
    line = _serve_fails(stack, "--audit-log", str(tmp_path / "audit.log"),
                        "--listen", f"0.0.0.0:{port}", "--admin-listen", f"127.0.0.1:{port}")
    assert line == (f"mlgate: --admin-listen 127.0.0.1:{port} would share the public "
                    f"listener's socket 0.0.0.0:{port}"), line
