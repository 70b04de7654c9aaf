"""``solr-policy serve``: the decision service for the DCC's request-validation pipeline.

An ASGI app (Starlette, ``service.app.create_app``) over the same engine, governance, alert
router and verifiable log as the command line. Each worker process opens its own store when
it starts (after the fork), never before. This package's top stays light (no Starlette) so
that ``solr-policy status`` can use ``service.events`` without the service's dependencies.
"""

from solr_policy.service.config import ServiceConfig

__all__ = ["ServiceConfig"]
