#!/usr/bin/env python3
"""The baseline sender: works as the old Python client's simple logger does (protocol.md):
one POST per entry, a fresh connection and a freshly signed JWT for each, on the caller's
thread. With `requests` and PyJWT importable (bench/run.sh makes a venv with both, the old
client's own dependencies), each entry is sent the way the old client's `Logger._send` does
it: `jwt.encode` of {sub, iat, exp} with HS256, then `requests.post(url, json=payload,
headers=...)` without a Session, then `raise_for_status`. Without PyJWT the token is signed
by hand; without requests, http.client makes a new HTTPConnection per request (the RESULT
line says which ran).

  pyclient_baseline.py send URL KEY COUNT [MAX_SECONDS]   -> one RESULT line
  pyclient_baseline.py wrk-setup KEY BODY_FILE            -> writes one entry body, prints a JWT
"""
import base64, hashlib, hmac, json, sys, time, uuid
from datetime import datetime, timezone

SERVICE = "bench"
# The same typical entry as bench/rbench.c.
MESSAGE = "payment authorised for order 8F3A-2291; gateway=stripe retries=0"
CONTEXT = {"order": {"id": 829145, "items": 3, "total": {"amount": 129.90, "currency": "EUR"}},
           "http": {"method": "POST", "path": "/api/v2/checkout", "status": 201},
           "client": {"ip": "10.1.2.3", "app": "web-74"}, "flags": ["a", "b"]}


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt(key, sub, lifetime=3600):
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = b64(json.dumps({"sub": sub, "iat": now, "exp": now + lifetime},
                            separators=(",", ":")).encode())
    signing = head + b"." + claims
    sig = b64(hmac.new(key.encode(), signing, hashlib.sha256).digest())
    return (signing + b"." + sig).decode()


def entry():
    return {
        "level": "INFO", "service": SERVICE, "logger_name": "bench.main", "message": MESSAGE,
        "user_id": "user-7c9e6679", "tenant_id": "tenant-acme-eu",
        "request_id": str(uuid.uuid4()), "context": CONTEXT,
        "client_log_datetime": datetime.now(timezone.utc).isoformat(),
    }


def send(url, key, count, max_seconds):
    try:
        import jwt as pyjwt

        def token():
            now = int(time.time())
            return pyjwt.encode({"sub": SERVICE, "iat": now, "exp": now + 3600}, key,
                                algorithm="HS256")
        signer = "PyJWT %s" % pyjwt.__version__
    except ImportError:
        token = lambda: jwt(key, SERVICE)
        signer = "HS256 by hand (no PyJWT)"
    try:
        import requests

        def send_one():
            # As the old client: a new token per entry, `json=` (requests serializes), no
            # Session (a new connection per entry), raise_for_status.
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token()}"}
            r = requests.post(url, json=entry(), headers=headers)
            r.raise_for_status()
            return r.status_code
        how = "requests %s no Session, %s" % (requests.__version__, signer)
    except ImportError:
        import http.client
        from urllib.parse import urlsplit
        u = urlsplit(url)

        def send_one():
            body = json.dumps(entry())
            headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token()}
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            try:
                c.request("POST", u.path, body=body, headers=headers)
                return c.getresponse().status
            finally:
                c.close()
        how = "http.client (no requests) new connection per request, %s" % signer
    lat, ok, errors = [], 0, 0
    t0 = time.perf_counter()
    for _ in range(count):
        s = time.perf_counter()
        try:
            st = send_one()
            ok += 200 <= st < 300
            errors += not (200 <= st < 300)
        except Exception:
            errors += 1
        lat.append(time.perf_counter() - s)
        if time.perf_counter() - t0 > max_seconds:
            break
    secs = time.perf_counter() - t0
    lat.sort()
    n = len(lat)
    pct = lambda p: int(lat[int((n - 1) * p)] * 1e9)
    print("RESULT bench=pybaseline client=%s count=%d ok=%d errors=%d rate=%.0f log_p50=%d "
          "log_p99=%d log_max=%d" % (how.replace(" ", "_").replace(",", ""), n, ok, errors,
                                     ok / secs, pct(0.5), pct(0.99), int(lat[-1] * 1e9)))


def main():
    if sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], int(sys.argv[4]),
             float(sys.argv[5]) if len(sys.argv) > 5 else 60.0)
    elif sys.argv[1] == "wrk-setup":
        with open(sys.argv[3], "w") as f:
            # Compact, like the library's bodies (same size on the wire).
            f.write(json.dumps(entry(), separators=(",", ":")))
        print(jwt(sys.argv[2], SERVICE))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
