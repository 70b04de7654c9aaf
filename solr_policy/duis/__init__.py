"""DUIS messages: hardened XML parsing and typed models of what was signed."""

from solr_policy.duis.models import (
    DuisRequest,
    OtherBody,
    PrepaymentSettings,
    RequestHeader,
    RequestId,
    SignedPreCommand,
    UpdatePaymentMode,
)
from solr_policy.duis.parser import NS_DS, NS_SR, ParserLimits, parse_document
from solr_policy.duis.request import build_request

__all__ = [
    "NS_DS",
    "NS_SR",
    "DuisRequest",
    "OtherBody",
    "ParserLimits",
    "PrepaymentSettings",
    "RequestHeader",
    "RequestId",
    "SignedPreCommand",
    "UpdatePaymentMode",
    "build_request",
    "parse_document",
]
