"""``/healthz``: 200 when Redis answers, 503 when it does not; no token needed."""

import redis
from litestar import Controller, Response, get

from app.api.deps import REDIS_DEPENDENCY, RedisDep
from app.api.openapi import EVERY, answers
from app.api.schemas import Health


class HealthController(Controller):
    path = "/healthz"
    tags = ("health",)
    dependencies = REDIS_DEPENDENCY

    @get("/", sync_to_thread=True, opt=answers({200: Health, 503: Health}, errors=EVERY))
    def health(self, client: RedisDep) -> Response[Health]:
        try:
            client.ping()
        except redis.RedisError as exc:
            return Response(
                Health(status="unavailable", redis=f"error: {exc.__class__.__name__}"),
                status_code=503,
            )
        return Response(Health(status="ok", redis="ok"), status_code=200)
