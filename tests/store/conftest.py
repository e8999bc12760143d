"""Redis servers for the store tests: see tests/redis_servers.py."""

from tests.redis_servers import (  # noqa: F401
    redis_cluster,
    redis_cluster_url,
    redis_server,
    redis_url,
)
