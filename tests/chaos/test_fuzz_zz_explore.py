import logging, traceback, collections
from hypothesis import given, settings, HealthCheck, strategies as st
from tests.chaos.test_fuzz_callbacks import bodies, send, Pool, client, pool  # noqa
import pytest

SEEN = collections.Counter()
EX = {}

class H(logging.Handler):
    def emit(self, rec):
        if rec.exc_info:
            tb = traceback.extract_tb(rec.exc_info[2])
            where = [f"{f.filename.split('/')[-1]}:{f.lineno}" for f in tb if "dialer" in f.filename][-1:]
            self.last = (type(rec.exc_info[1]).__name__, str(rec.exc_info[1])[:80], tuple(where))

h = H(); h.last = None
logging.getLogger("aiohttp.server").addHandler(h)

@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies(), pick=st.integers(0, 10_000))
async def test_explore(client, r, pool, body, pick):
    kind, payload = body
    target = pool.targets[pick % len(pool.targets)]
    h.last = None
    resp = await send(client, target, kind, payload, pool.sids[target], pool.targets[0])
    if resp.status >= 500:
        key = (kind, h.last[0] if h.last else None, h.last[2] if h.last else None)
        SEEN[key] += 1
        EX.setdefault(key, (repr(payload)[:300], h.last))

def test_report():
    for k, v in SEEN.items():
        print(v, k, EX[k])
