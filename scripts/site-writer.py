#!/usr/bin/env python3
"""A client of the site that never stops writing, for the main job (scripts/demo.sh).

  site-writer.py write  --site HOST:PORT --state FILE --stop FILE [--interval 0.1]
  site-writer.py verify --site HOST:PORT --state FILE

`write` logs in as admin through the site address and, every interval, appends one history row and stores one
small file, logging in again whenever its session ends or the address moves. It records in FILE (0600) which
rows and files the site accepted and why others were refused, until the stop file appears.
`verify` reads every history row and file the box now behind the site address holds and fails unless every
accepted row and file is there.

Passwords come only from the environment variables named in WRITER_PASSWORD_VARS (space-separated; the first
that logs in is used), never from flags. TLS is not pinned here: the demo's appliancectl pins the boxes; this
client only counts writes over loopback.
"""
import argparse
import http.client
import json
import os
import ssl
import sys
import time
from datetime import datetime, timezone

CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE
CONTEXT.minimum_version = ssl.TLSVersion.TLSv1_2


class Refused(Exception):
    """The site answered 503: the box is frozen for the migration."""


def request(site, method, path, token=None, body=None, content_type="application/json"):
    host, port = site.rsplit(":", 1)
    connection = http.client.HTTPSConnection(host, int(port), context=CONTEXT, timeout=10)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status == 503:
        raise Refused(json.loads(data or b"{}").get("message", data.decode(errors="replace")))
    if response.status // 100 != 2:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
    return json.loads(data) if data else None


def login(site, first=[0]):
    """Logs in with the passwords named in WRITER_PASSWORD_VARS, starting with the one that worked last, so a
    box that moved costs one failed attempt, not one per retry (the login backoff counts them)."""
    names = os.environ.get("WRITER_PASSWORD_VARS", "APPLIANCE_PASSWORD").split()
    last = None
    for step in range(len(names)):
        index = (first[0] + step) % len(names)
        password = os.environ.get(names[index])
        if not password:
            continue
        try:
            body = json.dumps({"username": "admin", "password": password})
            token = request(site, "POST", "/api/session", body=body)["token"]
            first[0] = index
            return token
        except (RuntimeError, OSError, Refused) as error:
            last = error
            if "401" not in str(error):
                break  # not a wrong password (unreachable, backoff): try again later with the same one
    raise RuntimeError(f"no password in {names} logs in at {site}: {last}")


def save(path, state):
    temporary = path + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out)
    os.replace(temporary, path)


def write(args):
    state = {"rows": [], "files": [], "refusals": [], "errors": 0}
    token = None
    n = 0
    while not os.path.exists(args.stop):
        try:
            if token is None:
                token = login(args.site)
            n += 1
            marker = f"writer-{os.getpid()}-{n}"
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            row = {"sessionId": marker, "username": "writer", "target": "srv-1", "proto": "ssh",
                   "startedAt": now, "endedAt": now, "bytesTransferred": 1, "summary": marker}
            request(args.site, "POST", "/login/api/history", token, json.dumps({"rows": [row]}))
            state["rows"].append(marker)
            name = marker + ".txt"
            request(args.site, "PUT", f"/login/api/files/{name}", token, f"written by {marker}".encode(),
                    "application/octet-stream")
            state["files"].append(name)
        except Refused as refusal:
            state["refusals"].append(str(refusal))
        except (RuntimeError, OSError, ValueError, KeyError):
            state["errors"] += 1
            token = None  # logged out, or the site address is moving: log in again
        save(args.state, state)
        time.sleep(args.interval)
    save(args.state, state)


def verify(args):
    state = json.load(open(args.state))
    token = login(args.site)
    markers = set()
    offset = 0
    while True:
        page = request(args.site, "GET", f"/login/api/history?offset={offset}&limit=10000", token)
        markers.update(row["sessionId"] for row in page["rows"])
        offset += len(page["rows"])
        if not page["rows"] or offset >= page["total"]:
            break
    files = {item["name"] for item in request(args.site, "GET", "/login/api/files", token)}
    missing_rows = [m for m in state["rows"] if m not in markers]
    missing_files = [f for f in state["files"] if f not in files]
    odd = [r for r in state["refusals"] if "moving to a new appliance" not in r]
    print(f"Writer: {len(state['rows'])} rows and {len(state['files'])} files accepted through {args.site}, "
          f"{len(state['refusals'])} writes refused during the freeze, {state['errors']} retried; "
          f"missing on the new box: {len(missing_rows)} rows, {len(missing_files)} files")
    if not state["rows"] or not state["files"]:
        sys.exit("the writer got nothing accepted: it did not test the migration")
    if missing_rows or missing_files:
        sys.exit(f"writes the old box accepted are missing: {missing_rows[:5]} {missing_files[:5]}")
    if odd:
        sys.exit(f"the site refused writes for another reason than the migration: {odd[:3]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["write", "verify"])
    parser.add_argument("--site", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--stop")
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    if args.mode == "write":
        if not args.stop:
            parser.error("write needs --stop FILE")
        write(args)
    else:
        verify(args)


if __name__ == "__main__":
    main()
