"""What hostile uploads make the real server hold in memory (its peak resident set, VmHWM).

    python -m bench.door

Sends, to a fresh server: an anonymous 200 MB chunked body (no Content-Length) to POST /jobs,
a signed-in 40 MB chunked metrics body (a million points), and a 12 MB batch of 300,000
points (under the body limit, over the 10,000-point limit). Prints each answer and how much the
server's peak memory grew. Target: the anonymous upload costs nothing (401 before reading),
the others stay far below what parsing them would take.
"""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

from bench.server import api_server

MB = 1024 * 1024
POINT = b'{"key":"val_loss","step":1,"value":0.5},'


def peak_rss_mb(pid: int) -> float:
    """A process's high-water mark of resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def send_chunked(port: int, path: str, token: str | None, total: int, chunk: bytes) -> int | None:
    """POST ``total`` bytes as a chunked body, as fast as the server takes them; then the status
    it answered, or None if it hung up before a status could be read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            sock.sendall(framed)
            sent += len(chunk)
        sock.sendall(b"0\r\n\r\n")
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading
    try:
        sock.settimeout(10)
        first = sock.recv(4096).split(b"\r\n", 1)[0]
        return int(first.split()[1]) if first.startswith(b"HTTP/1.1") else None
    except (TimeoutError, ConnectionResetError):
        return None
    finally:
        sock.close()


def post_batch(port: int, path: str, token: str, points: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = b'{"points":[' + POINT * (points - 1) + POINT[:-1] + b"]}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request("POST", path, body=body, headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def main() -> None:
    cases = {
        "anonymous 200 MB chunked POST /jobs": lambda port, token, metrics: send_chunked(
            port, "/api/v1/jobs", None, 200 * MB, b"x" * MB
        ),
        "signed-in 40 MB chunked metrics (1M points)": lambda port, token, metrics: send_chunked(
            port, metrics, token, 40 * MB, b'{"points":[' + POINT * (MB // len(POINT))
        ),
        "signed-in 12 MB batch of 300,000 points": lambda port, token, metrics: post_batch(
            port, metrics, token, 300_000
        ),
    }
    for name, send in cases.items():
        with api_server() as (api, pid):  # a fresh server each: peaks do not hide each other
            token = api.headers["authorization"].removeprefix("Bearer ")
            port = api.base_url.port
            assert port is not None
            run_id = api.post("/api/v1/jobs", json={"spec": {"epochs": 1}}).json()["id"]
            api.post(f"/api/v1/runs/{run_id}/status", json={"status": "running"})
            before = peak_rss_mb(pid)
            status = send(port, token, f"/api/v1/runs/{run_id}/metrics")
            grown = peak_rss_mb(pid) - before
            print(f"{name:45s} answered {status}  peak memory +{grown:7.1f} MiB")


if __name__ == "__main__":
    main()
