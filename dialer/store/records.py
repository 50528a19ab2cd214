"""Call records in Redis: load, and apply a state-machine event atomically.

The transition itself is decided by the pure ``dialer.core.calls.apply``; this
module turns the result into Redis commands (``plan``) and commits them with
one compare-and-set script (``lua/commit.lua``): written only if the fields
the decision read (``DECISION_FIELDS`` and the attempt's record) are still
what they were, so two writers (a callback and a worker, two duplicate
callbacks, admission's script) can never both win. The loser gets the call's
fields back in the same reply and decides again: no WATCH/MULTI, no extra
read. A transition that releases a slot may carry a ``Refill``
(``dialer.store.admission``): the same script run then admits the next calls
into the freed slot, so release and refill are one round trip. The invariant
kept here: a call is in its account's active set exactly while its state
holds a slot.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis
import redis.asyncio as aioredis

from dialer.core.calls import FINAL, HOLDS_SLOT, Call, Event, Kind, State, Transition, apply
from dialer.core.policy import RetryPolicy
from dialer.core.reasons import BotError
from dialer.store import keys, replies
from dialer.store.admission import Refill
from dialer.store.scripts import script

log = logging.getLogger(__name__)

Op = tuple[Any, ...]


def call_from_hash(fields: Mapping[str, str]) -> Call:
    sid = fields.get("sid") or None
    attempt = int(fields.get("attempt", 1))
    # Written by the streamer (streamer.store); only the current attempt's counts.
    bot_error = BotError.from_json(fields.get("bot_error"))
    return Call(
        state=State(fields.get("state", "pending")),
        attempt=attempt,
        tries=int(fields.get("tries", 0)),
        sid=sid,
        outcome=fields.get("outcome") or None,
        reason=fields.get("reason") or None,
        outcome_counts=json.loads(fields["oc"]) if fields.get("oc") else {},
        reason_code=fields.get("reason_code") or None,
        bot_error=bot_error if bot_error and bot_error.attempt == attempt else None,
    )


def call_to_hash(call: Call) -> dict[str, str]:
    return {
        "state": call.state.value,
        "attempt": str(call.attempt),
        "tries": str(call.tries),
        "sid": call.sid or "",
        "outcome": call.outcome or "",
        "reason": (call.reason or "")[:500],
        "reason_code": call.reason_code or "",
        "oc": json.dumps(dict(call.outcome_counts), separators=(",", ":")),
    }


def new_call_hash(to: str, call: Call | None = None, **contact: str) -> dict[str, str]:
    """A new contact's hash (ingest): the call's fields in their one layout
    (``call_to_hash``; ``lua/admit.lua`` changes only ``state``) and the contact's own.
    ``call`` None: a fresh pending call, the fields of almost every contact.

    Fields still at their empty value are left out: ``call_from_hash`` reads a
    missing one as that value, and the commit's compare treats missing alike on
    both sides. A queued contact is most of what a big campaign keeps in Redis,
    and the five empty fields were ~50 of its ~320 bytes (benchmarks/memory.py).
    The first transition writes the whole layout."""
    return {"to": to, **contact, **(_FRESH if call is None else _new(call))}


#: kept even when "empty": ``lua/admission.lua`` reads them with no default
_ALWAYS = frozenset({"state", "attempt", "tries"})


def _new(call: Call) -> dict[str, str]:
    return {k: v for k, v in call_to_hash(call).items() if k in _ALWAYS or v not in ("", "{}")}


# Built once: ingest writes 100k of these, and call_to_hash's JSON per contact
# was a tenth of its CPU.
_FRESH = _new(Call())


@dataclass(frozen=True)
class Leases:
    """How long a slot may be held before reconciliation looks at the call."""

    dialing_s: float = 60.0  # dialing / unknown: the answer should come at once
    ringing_s: float = 120.0  # placed / ringing: answered or given up within this
    answered_s: float = 600.0  # answered: checked this often if no terminal status comes
    stream_grace_s: float = 10.0  # after the attempt's stream ended: its callback's grace

    def deadline(self, state: State, fields: Mapping[str, str], attempt: int, now: float) -> float:
        """When a slot in ``state`` is next looked at: its lease, or sooner when the
        attempt's stream already ended (``stream_end``, see ``lua/stream_end.lua``).

        A late ``answered`` callback after the stream's end must not push the
        check back out to ``answered_s``.
        """
        at = now + self.for_state(state)
        ended = stream_end(fields, attempt)
        if ended is None or state not in (State.PLACED, State.RINGING, State.ANSWERED):
            return at  # a dial is judged only after DIALER_RECONCILE_AFTER_S
        return min(at, ended + self.stream_grace_s)

    def for_state(self, state: State) -> float:
        if state in (State.DIALING, State.UNKNOWN, State.ADMITTED):
            return self.dialing_s
        if state is State.ANSWERED:
            return self.answered_s
        return self.ringing_s


def stream_end(fields: Mapping[str, str], attempt: int) -> float | None:
    """When ``attempt``'s media stream ended, if the streamer said so."""
    n, _, at = (fields.get("stream_end") or "").partition(":")
    try:
        return float(at) if n == str(attempt) else None
    except ValueError:
        return None


@dataclass
class Extra:
    """Facts for the attempt record that the state machine does not need."""

    duration_s: int | None = None
    recording_url: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _attempt_record(fields: Mapping[str, str], n: int) -> dict[str, Any]:
    raw = fields.get(f"h:{n}")
    return json.loads(raw) if raw else {"n": n}


def _machine_verdict(event: Event, fields: Mapping[str, str], attempt: int) -> Event:
    """A "completed" call the streamer found a machine on ends ``machine``/``voicemail``.

    Exotel only says the call was answered and ended; the streamer heard the
    machine and wrote its verdict (``amd:<attempt>``) before hanging up.
    """
    if event.kind is not Kind.TERMINAL or (event.status or "").lower() != "completed":
        return event
    raw = fields.get(f"amd:{attempt}")
    if not raw or event.attempt not in (None, attempt):
        return event
    try:
        outcome = json.loads(raw).get("outcome")
    except (ValueError, AttributeError):
        return event
    if outcome in ("machine", "voicemail"):
        return replace(event, status=outcome)
    return event


def plan(
    account: str,
    call_id: str,
    fields: Mapping[str, str],
    event: Event,
    policy: RetryPolicy,
    *,
    now: float,
    leases: Leases,
    extra: Extra | None = None,
) -> tuple[Transition, list[Op]]:
    """Pure: the transition and the Redis commands that persist it."""
    cid, _ = keys.split_call_id(call_id)
    before = call_from_hash(fields)
    event = _machine_verdict(event, fields, before.attempt)
    t = apply(before, event, policy)
    if not t.changed:
        return t, []
    after = t.after
    ckey = keys.call(account, call_id)
    ops: list[Op] = [("hset", ckey, None, None, call_to_hash(after))]
    # The attempt record of the attempt this event belongs to.
    rec = _attempt_record(fields, before.attempt)
    if event.kind is Kind.DIAL:
        rec["started_at"] = now
        ops.append(("hset", ckey, "dial_at", str(now)))
        # A new dial (a retry, or the same attempt requeued) starts with no
        # stream: an older stream's end must not cut this one's lease short.
        ops.append(("hset", ckey, "stream_end", ""))
        ops.append(("hset", ckey, "stream_checks", "0"))
    if after.sid and after.sid != before.sid:
        rec["exotel_sid"] = after.sid
    if extra and extra.detail:
        rec.update(extra.detail)
    if t.attempt_reason is not None:
        rec["reason"] = t.attempt_reason.to_dict()
    elif event.kind is Kind.DIAL:
        rec.pop("reason", None)  # a deferral of this attempt is over: it is being dialled
    if event.kind in (Kind.TERMINAL, Kind.NOT_FOUND, Kind.REJECTED) or (
        after.state in FINAL and before.state in HOLDS_SLOT
    ):
        rec["ended_at"] = now
        rec["status"] = (event.status or after.state.value).lower()
        if extra and extra.duration_s is not None:
            rec["duration_s"] = extra.duration_s
        if extra and extra.recording_url:
            rec["recording_url"] = extra.recording_url
    # A contact cancelled or suppressed before any dial gets no attempt record.
    if event.kind not in (Kind.CANCEL, Kind.SUPPRESS) or rec.keys() - {"n", "reason"}:
        ops.append(("hset", ckey, f"h:{before.attempt}", json.dumps(rec, separators=(",", ":"))))

    if before.state != after.state:
        counts = keys.counts(account, cid)
        ops.append(("hincrby", counts, before.state.value, -1))
        ops.append(("hincrby", counts, after.state.value, 1))
    campaign = keys.campaign(account, cid)
    active = keys.active(account)
    if t.releases_slot:
        ops.append(("zrem", active, call_id))
        ops.append(("hincrby", campaign, "active", -1))
    elif after.state in HOLDS_SLOT and after.state != before.state:
        # Dialing/unknown get a short lease so reconciliation looks soon; an
        # answered call is checked with Exotel now and then in case its terminal
        # callback is lost (it may legitimately run for its whole time limit).
        deadline = leases.deadline(after.state, fields, after.attempt, now)
        ops.append(("zadd", active, {call_id: deadline}, True))
    if t.requeue_at is not None:
        ops.append(("zadd", keys.delayed(account, cid), {call_id: t.requeue_at}, False))
    if t.final:
        ops.append(("hincrby", campaign, "finished", 1))
    return t, ops


#: What ``plan`` reads of a call besides its attempt's own fields: the compare
#: in ``lua/commit.lua`` covers exactly these.
DECISION_FIELDS = (
    "state",
    "attempt",
    "tries",
    "sid",
    "outcome",
    "reason",
    "reason_code",
    "oc",
    "bot_error",
    "stream_end",
)
EventLog = tuple[str, Mapping[str, str]]  # (stream key, entry): a raw callback


def _expected(fields: Mapping[str, str]) -> list[list[Any]]:
    n = fields.get("attempt", "1")
    names = (*DECISION_FIELDS, f"h:{n}", f"amd:{n}")
    return [[f, fields.get(f, False)] for f in names]


def commit_args(
    call_key: str,
    fields: Mapping[str, str],
    ops: list[Op],
    log: EventLog | None = None,
    refill: Refill | None = None,
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of ``lua/commit.lua``: write ``ops`` if the call is still ``fields``
    (then run ``refill``'s admission, if any)."""
    names = [call_key]
    index = {call_key: 1}

    def k(key: str) -> int:
        if key not in index:
            names.append(key)
            index[key] = len(names)
        return index[key]

    cmds: list[list[Any]] = []
    for op in ops:
        name = op[0]
        if name == "hset" and op[2] is None:
            cmds.append(["hset", k(op[1]), *(x for kv in op[4].items() for x in kv)])
        elif name == "hset":
            cmds.append(["hset", k(op[1]), op[2], op[3]])
        elif name == "hincrby":
            cmds.append(["hincrby", k(op[1]), op[2], op[3]])
        elif name == "zrem":
            cmds.append(["zrem", k(op[1]), op[2]])
        elif name == "zadd":
            for member, score in op[2].items():
                cmds.append(["zadd", k(op[1]), repr(score), member, 1 if op[3] else 0])
        else:  # pragma: no cover - plan only emits the ops above
            raise ValueError(name)
    admission = "" if refill is None else _json([*map(k, refill.keys), *refill.args])
    entry = ""
    if log is not None:
        names.append(log[0])
        entry = _json([x for kv in log[1].items() for x in kv])
    args = [_json(_expected(fields)), _json(cmds), entry, str(keys.EVENTS_MAXLEN), admission]
    return names, args


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def written(fields: Mapping[str, str], ops: list[Op]) -> dict[str, str]:
    """The call's fields after ``ops`` (its hash writes), as Redis now holds them."""
    out = dict(fields)
    for op in ops:
        if op[0] == "hset" and op[2] is None:
            out.update(op[4])
        elif op[0] == "hset":
            out[op[2]] = op[3]
    return out


def _outcome(reply: list[Any], refill: Refill | None) -> dict[str, str] | None:
    """None: written (and ``refill`` filled in); else the call's fields now (it
    changed since it was read)."""
    flat = [x.decode() if isinstance(x, bytes) else str(x) for x in reply[1:]]
    code = int(reply[0])
    if code == 2:  # the refill failed after the writes: the settle step admits
        log.warning("refill in the commit failed: left to the settle step")
        return None
    if code == 1:
        if refill is not None:
            refill.ran, refill.admitted = True, flat
        return None
    return dict(zip(flat[::2], flat[1::2], strict=True))


_COMMIT = script("commit")
_COMMIT_SHA = hashlib.sha1(_COMMIT.encode()).hexdigest()


def _commit(
    r: redis.Redis, names: list[str], args: list[str], refill: Refill | None
) -> dict[str, str] | None:
    try:
        reply = r.evalsha(_COMMIT_SHA, len(names), *names, *args)
    except redis.exceptions.NoScriptError:
        reply = r.eval(_COMMIT, len(names), *names, *args)
    return _outcome(reply, refill)


async def _acommit(
    r: aioredis.Redis, names: list[str], args: list[str], refill: Refill | None
) -> dict[str, str] | None:
    try:
        reply = await r.evalsha(_COMMIT_SHA, len(names), *names, *args)
    except redis.exceptions.NoScriptError:
        reply = await r.eval(_COMMIT, len(names), *names, *args)
    return _outcome(reply, refill)


def transition(
    r: redis.Redis,
    account: str,
    call_id: str,
    event: Event,
    policy: RetryPolicy,
    *,
    now: float,
    leases: Leases,
    extra: Extra | None = None,
    fields: dict[str, str] | None = None,
    refill: Refill | None = None,
) -> Transition | None:
    """Apply ``event`` atomically (blocking client). None if the call does not exist.

    One round trip when the caller passes the ``fields`` it just read (the dial
    step); they are then updated in place to what was written, so the next
    transition needs no read either. Otherwise a read, then the commit.
    ``refill``: if the transition releases the slot, admission runs in the
    same commit and ``refill`` says what it admitted.
    """
    key = keys.call(account, call_id)
    current = replies.fields(r.hgetall(key)) if fields is None else fields
    while current:
        t, ops = plan(account, call_id, current, event, policy, now=now, leases=leases, extra=extra)
        if not ops:
            return t
        refills = refill if t.releases_slot else None
        names, args = commit_args(key, current, ops, refill=refills)
        fresh = _commit(r, names, args, refills)
        if fresh is None:
            if fields is not None:
                fields.update(written(current, ops))
            return t
        current = fresh  # another writer won: decide again on what it wrote
        if fields is not None:
            fields.clear()
            fields.update(fresh)
    return None


async def atransition(
    r: aioredis.Redis,
    account: str,
    call_id: str,
    event: Event | Callable[[Mapping[str, str]], Event | None],
    policy: RetryPolicy,
    *,
    now: float,
    leases: Leases,
    extra: Extra | None = None,
    log: EventLog | None = None,
    refill: Refill | None = None,
) -> Transition | None:
    """``transition`` for asyncio callers (the receiver): a read, then one commit.

    ``event`` may be a function of the call's fields, so a callback whose
    attempt depends on the record costs no extra round trip; it returns None
    for an event that is not this call's (nothing changes). ``log`` (the raw
    callback) is appended to its stream in the same round trip as the commit,
    and exactly once, whatever the transition does; so is ``refill``'s
    admission when the transition releases the slot (see ``transition``).
    """
    key = keys.call(account, call_id)
    current = replies.fields(await r.hgetall(key))
    t: Transition | None = None
    while current:
        ev = event(current) if callable(event) else event
        if ev is None:
            break
        t, ops = plan(account, call_id, current, ev, policy, now=now, leases=leases, extra=extra)
        if not ops:
            break
        refills = refill if t.releases_slot else None
        names, args = commit_args(key, current, ops, log, refills)
        fresh = await _acommit(r, names, args, refills)
        log = None  # appended by that commit, whatever its compare said
        if fresh is None:
            return t
        current, t = fresh, None  # another writer won: decide again on what it wrote
    if log is not None:
        await r.xadd(log[0], dict(log[1]), maxlen=keys.EVENTS_MAXLEN, approximate=True)  # type: ignore[arg-type]
    return t
