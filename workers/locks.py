"""Redis locks with expiry, owned by a token, so that only their owner extends or releases them.

A plan holds the lock of (space, project, environment) while its deployment there runs, and the locks of
the machines that deployment targets (taken all or none at once, so that two plans never deadlock over
machines). Expiries are bounded and extended at each look of the holder, so a lock outlives its holder
by one expiry at most, whatever the deployment's length. Whoever waited on a lock is told when it is
released.
"""

from __future__ import annotations

import redis

from workers.redis_client import as_text

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local waiters = redis.call('ZRANGE', KEYS[2], 0, -1)
  redis.call('DEL', KEYS[2])
  return waiters
end
return false
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


# KEYS: n locks, then their n waiter sets. ARGV: token, ttl in ms, waiter score, how long waiters outlive the
# lock in ms. All or none: when any lock is held by another token, nothing is taken, the token waits on the busy
# ones (until a while after that lock expires), and they are returned.
_ACQUIRE_ALL = """
local n = #KEYS / 2
local busy = {}
for i = 1, n do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= ARGV[1] then
    table.insert(busy, i)
  end
end
if #busy > 0 then
  for _, i in ipairs(busy) do
    redis.call('ZADD', KEYS[n + i], 'NX', ARGV[3], ARGV[1])
    redis.call('PEXPIRE', KEYS[n + i], math.max(redis.call('PTTL', KEYS[i]), 0) + tonumber(ARGV[4]))
  end
  return busy
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
return {}
"""


WAITERS_OUTLIVE_MS = 60_000


class Locks:
    def __init__(self, connection: redis.Redis, prefix: str) -> None:
        self._redis = connection
        self._prefix = prefix
        self._release = connection.register_script(_RELEASE)
        self._extend = connection.register_script(_EXTEND)
        self._acquire_all = connection.register_script(_ACQUIRE_ALL)

    def _key(self, name: str) -> str:
        return f"{self._prefix}:lock:{name}"

    def _waiters(self, name: str) -> str:
        return f"{self._prefix}:lock-waiters:{name}"

    def acquire(self, name: str, token: str, *, ttl_seconds: int) -> bool:
        """True if `token` holds the lock now (newly, or already)."""
        key = self._key(name)
        if self._redis.set(key, token, nx=True, ex=ttl_seconds):
            return True
        if self.holder(name) == token:
            self._redis.expire(key, ttl_seconds)
            return True
        return False

    def holder(self, name: str) -> str | None:
        value = self._redis.get(self._key(name))
        return None if value is None else as_text(value)

    def wait(self, name: str, waiter: str, *, at: float) -> None:
        """Remember `waiter` to be told when the lock is released. The waiters go a minute after the lock would
        expire: a lock that expires instead of being released wakes nobody (waiters have timers of their own),
        and leaves nothing behind."""
        waiters = self._waiters(name)
        remaining_ms = max(int(self._redis.pttl(self._key(name))), 0)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(waiters, {waiter: at}, nx=True)
            pipe.pexpire(waiters, remaining_ms + WAITERS_OUTLIVE_MS)
            pipe.execute()

    def extend(self, name: str, token: str, *, ttl_seconds: int) -> bool:
        return bool(self._extend(keys=[self._key(name)], args=[token, ttl_seconds * 1000]))

    def release(self, name: str, token: str) -> list[str]:
        """Release if `token` holds the lock; returns who was waiting for it."""
        waiters = self._release(keys=[self._key(name), self._waiters(name)], args=[token])
        return [as_text(waiter) for waiter in waiters or []]

    def acquire_all(self, names: list[str], token: str, *, ttl_seconds: int, waiter_at: float) -> list[str]:
        """Take every lock in `names` for `token`, or none of them. Returns the names held by others (empty
        when all were taken); on those, `token` is remembered as a waiter, in the same step."""
        if not names:
            return []
        keys = [self._key(name) for name in names] + [self._waiters(name) for name in names]
        busy = self._acquire_all(keys=keys, args=[token, ttl_seconds * 1000, waiter_at, WAITERS_OUTLIVE_MS])
        return [names[int(index) - 1] for index in busy or []]

    def extend_all(self, names: list[str], token: str, *, ttl_seconds: int) -> bool:
        """Extend each of `names` that `token` holds; False if any is no longer held by it."""
        return all([self.extend(name, token, ttl_seconds=ttl_seconds) for name in names])

    def release_all(self, names: list[str], token: str) -> list[str]:
        """Release each of `names` that `token` holds; returns everyone who waited on any of them."""
        waiters: list[str] = []
        for name in names:
            waiters += [waiter for waiter in self.release(name, token) if waiter not in waiters]
        return waiters
