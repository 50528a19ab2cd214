"""Every Redis key the system uses: its type, its contents and its lifetime.

No other module builds a key string. Keys of one account share the hash tag
``{A}`` (the Exotel account sid), so every Lua script touches one cluster slot
and the design runs on Redis Cluster unchanged.

=============================  =======  =========================================  ==============
key                            type     contents                                   lifetime
=============================  =======  =========================================  ==============
dl:accounts                    set      account sids                               permanent
dl:campaigns                   hash     campaign id -> account sid                 until expired
dl:{A}:account                 hash     account config (+ api token), circuit,     permanent
                                        ``paused_until`` (429 back-off)
dl:{A}:running                 set      campaign ids that may be admitted          until finished
dl:{A}:campaign:<cid>          hash     campaign meta: name, bot, policy json,     retention (R)
                                        state, total, weight, priority, active,
                                        ``expires_at`` once finished
dl:{A}:counts:<cid>            hash     call state -> number of calls in it        R
dl:{A}:survey:<cid>            hash     ``wav:<name>`` -> a WAV prompt, base64     R
dl:{A}:queue:<cid>             zset     call id -> submit order (due now)          until admitted
dl:{A}:delayed:<cid>           zset     call id -> not-before (epoch s)            until due
dl:{A}:active                  zset     call id -> lease deadline (epoch s)        while slot held
dl:{A}:rate                    zset     every Exotel request: "<call>:<attempt>:   60 s window
                                        <try>:<t>" (dial) or "rc:<call>:<t>" -> time
dl:{A}:rate_rc                 zset     the reconciliation requests among them     60 s window
dl:{A}:call:<call id>          hash     one contact: to, vars, state, attempt,     R
                                        sid, outcome, ``h:<n>`` attempt records,
                                        ``a:<qid>`` survey answers, ``stream_end``
                                        "<attempt>:<t>" when its stream ended,
                                        ``stream_checks`` (see dialer.services.reconcile)
dl:{A}:events                  stream   raw status callbacks (audit, replay)       R, MAXLEN ~100k
dl:rejects                     stream   refused callbacks with the reason          R, MAXLEN ~10k
dl:{A}:dnc                     set      E.164 numbers never to call                permanent
dl:{A}:callerids               zset     caller id -> last used (LRU rotation)      permanent
dl:{A}:callerids_off           hash     caller id -> why it left the rotation      permanent
dl:{A}:callerid_stats          hash     "<caller id>:dials" / ":answered" counts   permanent
dl:{A}:stream:<call>:<n>       string   "1": attempt n's stream token was used     until the
                                        (single use, set atomically)               token expires
dl:apikeys                     hash     key id -> json {digest, accounts, admin,   until revoked
                                        label, created_at}
dl:apikey_digests              hash     sha256(key) hex -> key id (lookup)         until revoked
dl:apirate:<key hash>:<min>    string   REST requests of one API key in one        2 minutes
                                        minute (per-key rate limit)
=============================  =======  =========================================  ==============

R (retention): once a campaign is finished (every contact final, or cancelled
with no live call), ``dialer.store.retention`` gives every key of it one absolute
expiry, ``DIALER_RETENTION_DAYS`` after it finished, and removes it from
``running``; once expired, its ``dl:campaigns`` entry goes too. Stream
entries older than the retention are trimmed. ``DELETE /v1/campaigns/{id}``
(``dialer.store.retention.purge``) deletes all of a campaign's keys and its stream
entries at once. Account-wide keys are permanent: they belong to the account.

Call ids are ``<campaign id>-<index>``; the account is found through
``dl:campaigns`` (immutable, so callers may cache it).
"""

from __future__ import annotations

import re

_SID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CID_PATTERN = r"^[a-z0-9]{4,32}$"  # campaign ids (create_campaign makes 12 hex digits)
_CID = re.compile(CID_PATTERN)

ACCOUNTS = "dl:accounts"
API_KEYS = "dl:apikeys"
API_KEY_DIGESTS = "dl:apikey_digests"
CAMPAIGNS = "dl:campaigns"
REJECTS = "dl:rejects"
EVENTS_MAXLEN = 100_000
REJECTS_MAXLEN = 10_000


def check_account(account: str) -> str:
    """Account sids become part of keys; refuse ones that could break the tag."""
    if not _SID.match(account):
        raise ValueError(f"invalid account sid {account!r}: use letters, digits, . _ -")
    return account


def account(a: str) -> str:
    return f"dl:{{{a}}}:account"


def running(a: str) -> str:
    return f"dl:{{{a}}}:running"


def campaign(a: str, cid: str) -> str:
    return f"dl:{{{a}}}:campaign:{cid}"


def counts(a: str, cid: str) -> str:
    return f"dl:{{{a}}}:counts:{cid}"


def survey(a: str, cid: str) -> str:
    return f"dl:{{{a}}}:survey:{cid}"


def queue(a: str, cid: str) -> str:
    return f"dl:{{{a}}}:queue:{cid}"


def delayed(a: str, cid: str) -> str:
    return f"dl:{{{a}}}:delayed:{cid}"


def active(a: str) -> str:
    return f"dl:{{{a}}}:active"


def rate(a: str) -> str:
    return f"dl:{{{a}}}:rate"


def rate_rc(a: str) -> str:
    return f"dl:{{{a}}}:rate_rc"


def call(a: str, call_id: str) -> str:
    return f"dl:{{{a}}}:call:{call_id}"


def call_prefix(a: str) -> str:
    """Prefix that Lua scripts append a call id to (they cannot import us)."""
    return f"dl:{{{a}}}:call:"


def events(a: str) -> str:
    return f"dl:{{{a}}}:events"


def dnc(a: str) -> str:
    return f"dl:{{{a}}}:dnc"


def callerids(a: str) -> str:
    return f"dl:{{{a}}}:callerids"


def callerids_off(a: str) -> str:
    return f"dl:{{{a}}}:callerids_off"


def callerid_stats(a: str) -> str:
    return f"dl:{{{a}}}:callerid_stats"


def stream_claim(a: str, call_id: str, attempt: int) -> str:
    return f"dl:{{{a}}}:stream:{call_id}:{attempt}"


def stream_claims_pattern(a: str, cid: str) -> str:
    """SCAN pattern for the stream claims of every call of campaign ``cid`` (a purge)."""
    return f"dl:{{{a}}}:stream:{cid}-*"


def call_id(cid: str, index: int) -> str:
    return f"{cid}-{index}"


def campaign_part(value: str) -> str:
    """The campaign id of call id ``value`` (``""`` if it has none); no validation."""
    return value.rpartition("-")[0]


def split_call_id(value: str) -> tuple[str, int]:
    """``"<cid>-<n>"`` -> (cid, n); ValueError on anything else."""
    cid, sep, n = value.rpartition("-")
    if not sep or not _CID.match(cid) or not n.isdigit():
        raise ValueError(f"invalid call id {value!r}")
    return cid, int(n)


def api_rate(key_hash: str, minute: int) -> str:
    """Requests counted for one API key (by hash, never the key) in one minute."""
    return f"dl:apirate:{key_hash}:{minute}"
