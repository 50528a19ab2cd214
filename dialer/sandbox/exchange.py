"""The exchange: places an accepted call and runs it to its terminal status.

Life of a sandbox call (protocol doc sections 1, 2 and 4)::

    accepted (in-progress) -> ringing -> busy | no-answer | failed
                                      -> answered (in-progress) -> stream -> completed
                                                                   no stream -> failed

The callee's behaviour comes from ``callee.behaviour_for``; the answered part
is ``stream.CallerStream``. The exchange sets statuses, keeps the account's
concurrency count (a call holds a slot from acceptance until terminal) and
asks ``callbacks.CallbackSender`` to report each requested event, terminal
always. The reorder fault is applied here: the call's earlier events are held
back and sent after its terminal one. HTTP is the api module's business.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Mapping

from dialer.sandbox.callbacks import CallbackSender
from dialer.sandbox.callee import behaviour_for, talk_limit_s, terminal_status
from dialer.sandbox.calls import SandboxCall
from dialer.sandbox.config import AccountConfig, CalleeBehaviour
from dialer.sandbox.state import SandboxState
from dialer.sandbox.stream import CallerStream

log = logging.getLogger(__name__)


class Exchange:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.callbacks = CallbackSender(state)

    def place(self, account: AccountConfig, form: Mapping[str, list[str]]) -> SandboxCall:
        """Create the call from a validated connect form and start its life."""
        state = self.state

        def one(name: str) -> str | None:
            values = form.get(name) or [""]
            return values[0] or None

        events = tuple(dict.fromkeys(form.get("StatusCallbackEvents[]", [])))
        limit = one("TimeLimit")
        now = time.time()
        call = SandboxCall(
            sid=uuid.uuid4().hex,
            seq=state.calls.next_seq(),
            account_sid=account.sid,
            number=one("From") or "",
            caller_id=one("CallerId") or "",
            stream_url=one("StreamUrl") or "",
            created_at=now,
            updated_at=now,
            custom_field=one("CustomField"),
            status_callback=one("StatusCallback"),
            events=events,
            time_limit_s=int(limit) if limit else None,
            callback_format=state.next_callback_format(),
            reorder_callbacks=state.chance(state.faults.reorder_callbacks),
        )
        if call.reorder_callbacks:
            state.report.faults_injected["reorder_callbacks"] += 1
        state.calls.add(call)
        state.report.call_accepted(account.sid, call.number, call.custom_field, now)
        behaviour = behaviour_for(call.number, state.config, state.overrides)
        state.spawn(self._run(call, behaviour), name=f"call-{call.sid}")
        log.debug("call %s account %s to %s accepted (%s)", call.sid, account.sid, call.number,
                 behaviour.outcome)  # fmt: skip
        return call

    async def _run(self, call: SandboxCall, behaviour: CalleeBehaviour) -> None:
        config = self.state.config
        try:
            await asyncio.sleep(config.ringing_delay_s)
            self._set(call, "ringing")
            self._notify(call, "ringing")
            await asyncio.sleep(behaviour.ring_s)
            status = terminal_status(behaviour)
            if status != "completed":
                self._finish(call, status)
                return
            call.answered_at = time.time()
            self._set(call, "in-progress")
            self._notify(call, "answered")
            stream = CallerStream(
                self.state, call, behaviour, talk_limit_s(behaviour, call.time_limit_s)
            )
            if not await stream.run():
                self.state.report.violation(
                    "stream_handshake", call.sid, "could not open the StreamUrl websocket (2 tries)"
                )
                self._finish(call, "failed")
                return
            call.conversation_s = max(1, math.ceil(time.time() - call.answered_at))
            self._finish(call, "completed")
        except asyncio.CancelledError:
            raise  # reset or shutdown: the report that counted this call is gone or going
        except Exception:
            log.exception("call %s crashed; reporting failed", call.sid)
            if not call.terminal:
                self._finish(call, "failed")

    def _set(self, call: SandboxCall, status: str) -> None:
        call.status = status
        call.updated_at = time.time()

    def _finish(self, call: SandboxCall, status: str) -> None:
        call.ended_at = time.time()
        self._set(call, status)
        self.state.report.call_ended(call.account_sid, status)
        self._notify(call, "terminal")
        log.debug("call %s ended: %s after %ds answered", call.sid, status, call.conversation_s)

    def _notify(self, call: SandboxCall, event: str) -> None:
        """Send a requested event (terminal always), honouring the reorder fault."""
        if event != "terminal" and event not in call.events:
            return
        if call.reorder_callbacks and event != "terminal":
            call.held_events.append(event)
            return
        self.callbacks.send(call, event)
        for held in call.held_events:
            self.callbacks.send(call, held)
        call.held_events.clear()
