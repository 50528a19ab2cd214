"""What the test suites (and benchmarks/) share; no test module imports another.

- ``system``: the whole dialer on loopback (``running_system``, ``supervised``)
- ``servers``: aiohttp apps served from a thread; a webhook sink
- ``signing``: the known secrets, settings, callback signatures, stream tokens
- ``seed``: the call-seeding factory (accounts, campaigns, calls in Redis)
- ``state``: a campaign's records read back; the store's invariants
- ``receiver``, ``stream``, ``callbacks``, ``cli``: each process as a test drives it
- ``audio``, ``bots``: test audio and a fake bot controller
- ``polling``: deadlines instead of sleeps
- ``shellout``: the audit hook that refuses programs ``make setup`` did not install
"""
