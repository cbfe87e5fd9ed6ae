# ruff: noqa: E501 - generator tables read best one entry per line
"""Generate tests/data/redaction_corpus.jsonl: labelled, fake-but-real-looking secrets and near-misses.

Run: .venv/bin/python tests/data/redaction_corpus.py   (deterministic; seed fixed)

Each line: {"id", "kind" (expected tag kind, or null for a negative), "placement", "text",
"secrets" (substrings that must not survive redaction; empty for negatives)}.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

R = random.Random(20261125)
AN = string.ascii_letters + string.digits
B32 = string.ascii_uppercase + "234567"


def rs(n: int, alphabet: str = AN) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(R.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for d in string.digits:
        cand = body + d
        total = 0
        for i, ch in enumerate(reversed(cand)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return cand
    raise AssertionError


def luhn_bad(prefix: str, length: int) -> str:
    good = luhn_complete(prefix, length)
    return good[:-1] + str((int(good[-1]) + 1 + R.randrange(8)) % 10)


# --------------------------------------------------------------------------------------- positives
def openai() -> str:
    return R.choice(
        [
            lambda: "sk-proj-" + rs(74, AN + "_-") + rs(2),
            lambda: "sk-svcacct-" + rs(60, AN + "_-") + rs(2),
            lambda: "sk-admin-" + rs(50, AN + "_-") + rs(2),
            lambda: "sk-" + rs(20) + "T3BlbkFJ" + rs(20),
            lambda: "sk-" + rs(48),
        ]
    )()


def anthropic() -> str:
    return R.choice(["sk-ant-api03-" + rs(93, AN + "_-") + "AA", "sk-ant-admin01-" + rs(80, AN + "_-") + "AA"])


def jwt() -> str:
    header = b64url(json.dumps({"alg": R.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    payload = b64url(
        json.dumps({"sub": rs(12), "role": "authenticated", "exp": 1764000000 + R.randrange(10**6)}).encode()
    )
    return f"{header}.{payload}.{b64url(R.randbytes(32))}"


def pem() -> str:
    label = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    body = "\n".join(base64.b64encode(R.randbytes(48)).decode() for _ in range(R.randint(3, 8)))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def card() -> str:
    kind = R.choice(["visa", "mc", "amex", "disc", "fixed"])
    if kind == "fixed":
        return R.choice(["4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005", "4242-4242-4242-4242"])
    num = {
        "visa": lambda: luhn_complete("4", 16),
        "mc": lambda: luhn_complete(R.choice(["51", "53", "55", "22"]), 16),
        "amex": lambda: luhn_complete(R.choice(["34", "37"]), 15),
        "disc": lambda: luhn_complete("6011", 16),
    }[kind]()
    sep = R.choice(["", " ", "-"])
    if not sep:
        return num
    if len(num) == 15:
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join(num[i : i + 4] for i in range(0, 16, 4))


def phone() -> str:
    return R.choice(
        [
            lambda: "+1" + str(R.randint(201, 989)) + str(R.randint(2000000, 9999999)),
            lambda: f"+1 {R.randint(201, 989)} {R.randint(200, 999)} {R.randint(1000, 9999)}",
            lambda: f"+44 20 {R.randint(7000, 7999)} {R.randint(1000, 9999)}",
            lambda: f"+49 30 {R.randint(10000000, 99999999)}",
            lambda: f"({R.randint(201, 989)}) {R.randint(200, 999)}-{R.randint(1000, 9999)}",
            lambda: f"{R.randint(201, 989)}-{R.randint(200, 999)}-{R.randint(1000, 9999)}",
        ]
    )()


def email() -> str:
    user = R.choice(["john.doe", "alice", "b.smith+agents", "dev_ops", "maria.garcia"]) + str(R.randint(1, 99))
    return f"{user}@{R.choice(['example.com', 'acme.io', 'mail.co.uk', 'corp-internal.dev'])}"


# (kind, secret generator, templates). {s} is the secret; the whole inserted secret must vanish,
# except templates that name a "value" part via {v} (then only v must vanish).
SIMPLE = {
    "openai_key": openai,
    "anthropic_key": anthropic,
    "google_api_key": lambda: "AIza" + rs(35, AN + "_-"),
    "aws_access_key": lambda: R.choice(["AKIA", "ASIA"]) + rs(16, B32),
    "github_token": lambda: (
        R.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + rs(36)
        if R.random() < 0.8
        else "github_pat_" + rs(22) + "_" + rs(59)
    ),
    "gitlab_token": lambda: "glpat-" + rs(20, AN + "_-"),
    "huggingface_token": lambda: "hf_" + rs(34, string.ascii_letters),
    "openrouter_key": lambda: "sk-or-v1-" + rs(64, "0123456789abcdef"),
    "slack_token": lambda: (
        R.choice(["xoxb-", "xoxp-", "xoxa-"]) + f"{R.randint(10**11, 10**12)}-{R.randint(10**12, 10**13)}-{rs(24)}"
    ),
    "slack_webhook": lambda: f"https://hooks.slack.com/services/T{rs(8, B32)}/B{rs(8, B32)}/{rs(24)}",
    "stripe_key": lambda: (
        R.choice(["sk_live_", "sk_test_", "rk_live_"]) + rs(24) if R.random() < 0.8 else "whsec_" + rs(32)
    ),
    "jwt": jwt,
    "email": email,
    "card": card,
    "phone": phone,
}

TEXT_TEMPLATES = [
    ("prose", "Using credential {s} for the nightly sync job"),
    ("prose", "user pasted {s} into the chat, please rotate it"),
    ("json", '{{"event": "llm_call", "value": "{s}", "thread_id": "t-1"}}'),
    ("json_escaped", '"{{\\"msg\\": \\"found {s} in tool output\\"}}"'),
    ("logline", "2026-11-25T10:02:00Z WARN agent.tools value={s} tool=web_search"),
    (
        "traceback",
        'Traceback (most recent call last):\n  File "/app/run.py", line 42, in call\n'
        '    client.call(key="{s}")\nRuntimeError: rejected {s}',
    ),
    ("repr", "kwargs={{'model': 'gpt-4o', 'extra': '{s}'}}"),
    ("llm", "Assistant: I found these details in the file: {s}. Shall I continue?"),
]
# Encodings and glued contexts: URL-encoded "=", JSON-escaped newlines, markdown, shell exports.
ENCODED_TEMPLATES = [
    ("url_encoded", "redirect=https%3A%2F%2Fapp.example.com%2Fcb%3Fkey%3D{s}%26x%3D1"),
    ("json_newline", '{{"log": "config dump:\\n{s}\\nend"}}'),
    ("markdown", "```bash\nexport API_KEY={s}\n```"),
    ("shell", "curl -s -u '{s}:' https://api.example.com"),
]
URL_SAFE = {
    "openai_key",
    "anthropic_key",
    "google_api_key",
    "aws_access_key",
    "github_token",
    "gitlab_token",
    "huggingface_token",
    "openrouter_key",
    "stripe_key",
    "jwt",
}


def positives() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for kind, gen in SIMPLE.items():
        for placement, tpl in TEXT_TEMPLATES:
            for _ in range(3):
                s = gen()
                out.append({"kind": kind, "placement": placement, "text": tpl.format(s=s), "secrets": [s]})
        if kind in URL_SAFE:
            for placement, tpl in ENCODED_TEMPLATES:
                s = gen()
                out.append({"kind": kind, "placement": placement, "text": tpl.format(s=s), "secrets": [s]})
            for _ in range(4):
                s = gen()
                out.append(
                    {
                        "kind": kind,
                        "placement": "url",
                        "secrets": [s],
                        "text": f"GET https://api.example.com/v1/items?page=2&q={s} 200",
                    }
                )
    # contextual secrets: only the value part must vanish
    ctx = []
    for _ in range(12):
        j = jwt()
        ctx.append(("jwt", "url", f"GET /api/agent-run/{rs(8).lower()}/stream?token={j} HTTP/1.1", j))
        tok = rs(40, AN + "._-")
        ctx.append(("bearer", "header", f"Authorization: Bearer {tok}", tok))
        ctx.append(("bearer", "curl", f"curl -H 'Authorization: bearer {tok}' https://x", tok))
        ctx.append(("bearer", "upper", f"AUTHORIZATION:BEARER {tok}", tok))
        ctx.append(("bearer", "prose", f"retrying with Bearer {tok} after 401", tok))
        cred = base64.b64encode(f"{rs(6).lower()}:{rs(12)}".encode()).decode()
        ctx.append(("basic_auth", "header", f"authorization: Basic {cred}", cred))
        pw = rs(14, AN + "!#$%^*")
        ctx.append(("secret", "kv", f"connecting with password={pw} retries=3", pw))
        ctx.append(("secret", "json", f'{{"db_password": "{pw}", "host": "db"}}', pw))
        ctx.append(("secret", "kv", f"client_secret: {pw}", pw))
        ctx.append(("secret", "kv", f"AWS_SECRET_ACCESS_KEY={rs(40, AN + '/+')}", None))
        ctx.append(("secret", "url", f"https://api.example.com/cb?code=1&access_token={pw}&x=1", pw))
        ctx.append(("url_password", "dsn", f"DATABASE_URL=postgres://app:{pw}@db.internal:5432/app", pw))
        ctx.append(("url_password", "dsn", f"redis://default:{pw}@cache:6379/0 connected", pw))
        ctx.append(("url_password", "dsn", f"REDIS_URL=redis://:{pw}@redis:6379/0", pw))  # no user
        # key names the text scan must know as well as the dict rules do
        ctx.append(("secret", "env", f"DB_PASS={pw}", pw))
        ctx.append(("secret", "yaml", f"SMTP_PASS: {pw}", pw))
        ctx.append(("secret", "kv", f"login user=bob pass={pw} host=db", pw))
        ctx.append(
            ("secret", "json", f'{{"ssn": "{R.randint(100, 899)}-{R.randint(10, 99)}-{R.randint(1000, 9999)}"}}', None)
        )
        ctx.append(("secret", "kv", f"sessionid={rs(32).lower()} path=/", None))
        ctx.append(("secret", "kv", f"signing_key={rs(40, AN + '/+')}", None))
        # a JWT cut by a length limit (header.payload, no signature) still carries its claims
        j = jwt().rsplit(".", 1)[0]
        cut = j[: R.randint(j.index(".") + 8, len(j))]  # at least a few characters of the claims
        ctx.append(("jwt", "truncated", f"stream opened with {cut}…[truncated]", cut))
        ck = rs(32)
        ctx.append(("cookie", "header", f"Cookie: sessionid={ck}; csrftoken={rs(20)}", ck))
        ctx.append(("cookie", "header", f"set-cookie: sb-access-token={ck}; Path=/; HttpOnly", ck))
        p = pem()
        ctx.append(("private_key", "pem", f"loaded key:\n{p}\nok", p.split("\n")[1]))
        ctx.append(("private_key", "pem_json", json.dumps({"key": p})[1:-1], p.split("\n")[2]))
    for kind, placement, text, secret in ctx:
        if secret is None:
            sep = "=" if "=" in text else ": "
            secret = text.split(sep, 1)[1].split(" ")[0].strip('"}')
        out.append({"kind": kind, "placement": placement, "text": text, "secrets": [secret]})
    return out


# --------------------------------------------------------------------------------------- negatives
def negatives() -> list[dict[str, object]]:
    import uuid

    gens = [
        ("uuid", lambda: f"thread_id={uuid.UUID(int=R.getrandbits(128), version=4)} started"),
        ("uuid", lambda: f"agent_run {uuid.UUID(int=R.getrandbits(128), version=4)} completed in 12.3s"),
        ("git_sha", lambda: f"deployed commit {R.getrandbits(160):040x} to prod"),
        ("sha256", lambda: f"sha256:{R.getrandbits(256):064x}"),
        ("trace_id", lambda: f"trace_id={R.getrandbits(128):032x} span_id={R.getrandbits(64):016x}"),
        ("number", lambda: f"processed {R.randint(0, 10**9):,} rows in {R.random() * 100:.2f}s"),
        ("number", lambda: f"order {R.randint(10**9, 10**10)} total {R.randint(1, 9999)}.{R.randint(0, 99):02d} USD"),
        ("epoch", lambda: f"ts={R.randint(1_600_000_000_000, 1_800_000_000_000)} ns={R.randint(10**18, 2 * 10**18)}"),
        (
            "timestamp",
            lambda: (
                f"2026-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:00.{R.randint(0, 999):03d}+00:00 INFO ok"
            ),
        ),
        (
            "version",
            lambda: (
                f"python {R.randint(2, 3)}.{R.randint(0, 13)}.{R.randint(0, 20)} litellm 1.{R.randint(10, 110)}.{R.randint(0, 9)} build 10.0.19041.{R.randint(1000, 9999)}"
            ),
        ),
        (
            "version",
            lambda: (
                f"semver {R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}-rc.{R.randint(1, 9)}+build.{R.randint(1, 99)}"
            ),
        ),
        ("base64_id", lambda: f"id={base64.urlsafe_b64encode(R.randbytes(R.choice([12, 16, 24]))).decode()}"),
        ("base64_blob", lambda: f"image/png;base64,{base64.b64encode(R.randbytes(90)).decode()}"),
        ("eyJ_nonjwt", lambda: f"state={b64url(json.dumps({'n': R.randint(1, 99)}).encode())}"),
        ("luhn_invalid", lambda: f"reference {luhn_bad('4', 16)} pending"),
        ("luhn_invalid", lambda: f"ref {luhn_bad('5', 16)[:4]} {luhn_bad('5', 16)[4:8]} ok"),
        (
            "model",
            lambda: R.choice(
                [
                    "model=claude-3-5-sonnet-20241022",
                    "model=gpt-4o-mini-2024-07-18",
                    "model=anthropic/claude-sonnet-4-20250514",
                    "model: gemini-2.5-pro",
                ]
            ),
        ),
        (
            "words",
            lambda: R.choice(
                [
                    "risk-averse rollout of task-scheduler",
                    "the ask-user tool and desk-booking",
                    "tokens start with ghp_ and sk- prefixes",
                    "passwordless login is enabled",
                    "the password field is required",
                    "Basic plan upgraded",
                    "bearer of bad news",
                    "Authorization header missing",
                    "secret santa event",
                    "token budget exceeded",
                ]
            ),
        ),
        (
            "usage",
            lambda: (
                f"max_tokens={R.randint(100, 8192)} prompt_tokens={R.randint(1, 9999)} token_count: {R.randint(1, 99)}"
            ),
        ),
        (
            "ids",
            lambda: (
                f"api_key_id=ak_{R.randint(1, 999)} session.id={R.getrandbits(64):016x} auth_method=jwt token_type=bearer"
            ),
        ),
        (
            "decorator",
            lambda: R.choice(["@app.get('/api/threads')", "@dramatiq.actor(max_retries=3)", "cc @john_doe please"]),
        ),
        (
            "isbn",
            lambda: f"ISBN 978-{R.randint(0, 9)}-{R.randint(10, 99)}-{R.randint(100000, 999999)}-{R.randint(0, 9)}",
        ),
        (
            "path",
            lambda: f"/api/agent-run/{uuid.UUID(int=R.getrandbits(128), version=4)}/stream?page={R.randint(1, 9)}",
        ),
        (
            "duration",
            lambda: f"GET /health 200 {R.random() * 50:.1f}ms HTTP/1.1 port 127.0.0.1:{R.randint(1024, 65535)}",
        ),
        ("hex", lambda: f"color #{R.getrandbits(24):06x} mac {':'.join(f'{R.getrandbits(8):02x}' for _ in range(6))}"),
        (
            "date",
            lambda: (
                f"due {R.randint(1, 28):02d}/{R.randint(1, 12):02d}/2026 or 2026-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}"
            ),
        ),
        ("k8s", lambda: f"pod agentpress-worker-{R.getrandbits(32):08x}-{rs(5).lower()} restarted"),
        (
            "placeholder",
            lambda: R.choice(["password=*** (hidden)", "api_key=${OPENAI_API_KEY}", "token={{ secrets.TOKEN }}"]),
        ),
        # what a key=value scan must leave alone: states, counts, token metadata
        (
            "kv_state",
            lambda: R.choice(
                [
                    "token_type=Bearer expires_in=3600",
                    f"token_type=bearer expires_in={R.randint(60, 86400)} scope=read",
                    "secret=False",
                    "secret=None rotated=false",
                    "auth=ok",
                    "auth=OK user=bob",
                    "authorization: granted",
                    "Authorization: Bearer",
                    f"token: {R.randint(1, 9999)}",
                    "api_key=sk-...abcd",
                    "pass=1 fail=0 skip=2",
                ]
            ),
        ),
        # numbers in structured logs: floats (costs, scores), ns epochs and durations, long ids
        ("float", lambda: json.dumps({f"score_{i}": R.random() for i in range(6)} | {"latency_s": R.random() * 30})),
        (
            "cost_usd",
            lambda: json.dumps(
                {"event": "llm_call", "model": "gpt-4o"} | {f"cost_usd_{i}": R.random() / 100 for i in range(4)}
            ),
        ),
        ("cost_usd", lambda: f"cost_usd={R.random() / 10:.16f} prompt_tokens={R.randint(1, 99999)}"),
        (
            "epoch_ns",
            lambda: json.dumps(
                {
                    "ts_ns": R.randint(1_700_000_000 * 10**9, 1_800_000_000 * 10**9),
                    "duration_ns": R.randint(10**6, 10**13),
                }
            ),
        ),
        # 16-19 digit ids a card cannot be: no issuer prefix, a wrong length, or glued to other digits
        (
            "long_id",
            lambda: f"snowflake_id={R.randint(10**17, 2 * 10**18)} chat_id={R.randint(7 * 10**15, 10**16 - 1)}",
        ),
        ("long_id", lambda: f"order {luhn_complete(R.choice(['4', '51', '34']), 17)} shipped"),
        ("long_id", lambda: f"version 1.{luhn_complete('4', 16)} and x{luhn_complete('4', 16)}"),
    ]
    out: list[dict[str, object]] = []
    for placement, g in gens:
        for _ in range(16):
            out.append({"kind": None, "placement": placement, "text": g(), "secrets": []})
    return out


def main() -> None:
    rows = positives() + negatives()
    path = Path(__file__).with_suffix(".jsonl")
    with path.open("w") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({"id": i, **row}) + "\n")
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
