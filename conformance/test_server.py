"""`berth server`: certificates, kubeconfig, health, version, authentication, lifecycle."""
import os
import signal
import ssl
import stat
import subprocess
import urllib.request
import urllib.error
import json

import conftest


def https_get(url, cafile=None, cert=None, headers=None):
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    if cert:
        ctx.load_cert_chain(*cert)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_kubectl_version_reports_server_1_32(server):
    out = server.kubectl("version", "-o", "json").stdout
    v = json.loads(out)["serverVersion"]
    assert v["major"] == "1" and v["minor"] == "32"
    assert v["gitVersion"].startswith("v1.32.0-berth.")


def test_first_start_writes_pki_kubeconfig_and_token(server):
    pki = os.path.join(server.data_dir, "pki")
    for f in ["ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key"]:
        assert os.path.exists(os.path.join(pki, f)), f
    for secret in ["pki/ca.key", "pki/admin.key", "node-token", "kubeconfig"]:
        mode = stat.S_IMODE(os.stat(os.path.join(server.data_dir, secret)).st_mode)
        assert mode == 0o600, (secret, oct(mode))
    subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", os.path.join(pki, "admin.crt")],
                          capture_output=True, text=True).stdout
    assert "CN = admin" in subj and "O = system:masters" in subj


def test_health_endpoints_answer_ok_without_credentials(server):
    ca = os.path.join(server.data_dir, "pki", "ca.crt")
    for path in ["/livez", "/readyz", "/healthz"]:
        assert https_get(server.url + path, cafile=ca) == (200, "ok")


def test_request_without_credentials_gets_401_status(server):
    ca = os.path.join(server.data_dir, "pki", "ca.crt")
    code, body = https_get(server.url + "/api/v1/namespaces", cafile=ca)
    assert code == 401
    status = json.loads(body)
    assert status["kind"] == "Status" and status["reason"] == "Unauthorized" and status["code"] == 401


def test_wrong_bearer_token_gets_401_even_on_public_paths(server):
    code, _ = https_get(server.url + "/version", headers={"Authorization": "Bearer nope"})
    assert code == 401


def test_node_token_authenticates(server):
    token = open(os.path.join(server.data_dir, "node-token")).read().strip()
    code, body = https_get(server.url + "/api/v1/namespaces/default", headers={"Authorization": f"Bearer {token}"})
    assert code == 200 and json.loads(body)["metadata"]["name"] == "default"


def test_client_certificate_authenticates(server):
    pki = os.path.join(server.data_dir, "pki")
    code, body = https_get(server.url + "/api/v1/namespaces/default", cafile=os.path.join(pki, "ca.crt"),
                           cert=(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key")))
    assert code == 200


def test_second_server_on_same_data_dir_refuses(server):
    other = subprocess.run([conftest.BERTH, "server", "--data-dir", server.data_dir, "--listen",
                            f"127.0.0.1:{conftest.free_port()}"], capture_output=True, text=True, timeout=20)
    assert other.returncode != 0
    assert "in use by another berth process" in other.stderr


def test_help_flag_prints_usage_and_starts_nothing(tmp_path):
    data = tmp_path / "data"
    for command in ("server", "up"):
        r = subprocess.run([conftest.BERTH, command, "--data-dir", str(data), "--help"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0
        assert "usage: berth" in r.stdout + r.stderr
        assert not data.exists()


def test_sigterm_stops_cleanly_and_restart_keeps_state(fresh_server):
    fresh_server.start()
    fresh_server.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
    ca_before = open(os.path.join(fresh_server.data_dir, "pki", "ca.crt")).read()
    assert fresh_server.stop(signal.SIGTERM) == 0
    fresh_server.start()
    cm = fresh_server.kubectl_json("get", "configmap", "survivor")
    assert cm["data"] == {"k": "v"}
    assert open(os.path.join(fresh_server.data_dir, "pki", "ca.crt")).read() == ca_before


def test_tls_san_is_in_serving_certificate(fresh_server):
    fresh_server.args += ["--tls-san", "berth.example.test", "--tls-san", "10.11.12.13"]
    fresh_server.start()
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                           os.path.join(fresh_server.data_dir, "pki", "server.crt")],
                          capture_output=True, text=True).stdout
    assert "DNS:berth.example.test" in text and "IP Address:10.11.12.13" in text


def test_corrupt_store_refuses_to_start(fresh_server):
    fresh_server.start()
    fresh_server.stop()
    db = os.path.join(fresh_server.data_dir, "db")
    for name in os.listdir(db):
        if name.endswith(".sst") or name.startswith("MANIFEST"):
            with open(os.path.join(db, name), "r+b") as f:
                f.seek(0)
                f.write(b"\0garbage\0" * 64)
    r = subprocess.run(fresh_server.args, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "corrupt" in r.stderr.lower() or "corruption" in r.stderr.lower(), r.stderr


def test_default_toleration_seconds_follow_the_server_flags(fresh_server):
    """Admission's DefaultTolerationSeconds, with kube-apiserver's flags."""
    fresh_server.args += ["--no-controllers", "--default-not-ready-toleration-seconds", "7",
                          "--default-unreachable-toleration-seconds", "9"]
    fresh_server.start()
    fresh_server.kubectl("run", "tolerant", "--image=busybox")
    tolerations = fresh_server.kubectl_json("get", "pod", "tolerant")["spec"]["tolerations"]
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 7} in tolerations
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 9} in tolerations
