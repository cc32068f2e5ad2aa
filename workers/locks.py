"""Redis locks with expiry, owned by a token, so that only their owner extends or releases them.

A plan holds the lock of (space, project, environment) while its deployment there runs; the expiry
frees it should the plan never come back. Whoever waited on a lock is told when it is released.
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


class Locks:
    def __init__(self, connection: redis.Redis, prefix: str) -> None:
        self._redis = connection
        self._prefix = prefix
        self._release = connection.register_script(_RELEASE)
        self._extend = connection.register_script(_EXTEND)

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
        """Remember `waiter` to be told when the lock is released."""
        self._redis.zadd(self._waiters(name), {waiter: at}, nx=True)

    def extend(self, name: str, token: str, *, ttl_seconds: int) -> bool:
        return bool(self._extend(keys=[self._key(name)], args=[token, ttl_seconds * 1000]))

    def release(self, name: str, token: str) -> list[str]:
        """Release if `token` holds the lock; returns who was waiting for it."""
        waiters = self._release(keys=[self._key(name), self._waiters(name)], args=[token])
        return [as_text(waiter) for waiter in waiters or []]
