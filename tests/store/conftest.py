"""Redis servers for the store tests: see tests/redis_servers.py and sentinel_servers.py."""

from tests.redis_servers import (  # noqa: F401
    redis_cluster,
    redis_cluster_url,
    redis_server,
    redis_url,
)
from tests.store.sentinel_servers import redis_sentinel_url, redis_sentinels  # noqa: F401
