"""Campaign control: pause, resume and cancel.

Pause and cancel only stop new admissions (the campaign leaves the running
set or admission skips it); calls already dialling or ringing go on. Settling
the calls a cancel leaves queued is the ``dialer.cancel_campaign`` task's.
"""

from __future__ import annotations

from typing import Any, Literal

import redis

from dialer.core.errors import ValidationError
from dialer.core.states import CampaignState
from dialer.services.queries import status
from dialer.store import keys
from dialer.store.campaigns import load_meta


def set_state(
    r: redis.Redis, cid: str, action: Literal["pause", "resume", "cancel"]
) -> dict[str, Any] | None:
    """Pause and cancel stop new admissions; calls already dialling or ringing go on."""
    found = load_meta(r, cid)
    if found is None:
        return None
    account, meta = found
    current = meta.get("state", CampaignState.RUNNING)
    if current == CampaignState.CANCELLED and action != "cancel":
        raise ValidationError("campaign is cancelled", field="state")
    ckey = keys.campaign(account, cid)
    if action == "pause":
        r.hset(ckey, "state", CampaignState.PAUSED)
    elif action == "resume":
        with r.pipeline() as pipe:
            pipe.hset(ckey, "state", CampaignState.RUNNING)
            pipe.sadd(keys.running(account), cid)
            pipe.execute()
    else:
        with r.pipeline() as pipe:
            pipe.hset(ckey, "state", CampaignState.CANCELLED)
            pipe.srem(keys.running(account), cid)
            pipe.execute()
    return status(r, cid)
