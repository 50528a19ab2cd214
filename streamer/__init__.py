"""The streamer process: the AgentStream websocket server Exotel connects to.

Modules: ``protocol`` (codec, pure), ``audio`` (resample/chunk/pace/VAD,
pure), ``pacing`` (the process's one timer that sends every stream's due
audio), ``wire`` (close codes, frame budget), ``session`` (one call with a
bot), ``bots`` (interface, echo, survey, relay, plugins), ``store`` (Redis
edge), ``metrics``, ``app`` (``create_app``, ``run``). Importing this package
opens nothing; ``streamer.app.run(settings, listen)`` serves.
"""
