"""A real redis-server for the history on Redis (tests/redis_servers.py)."""

from tests.redis_servers import redis_server, redis_url  # noqa: F401
