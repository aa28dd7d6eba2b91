"""Every table, imported so that `metadata` knows them all (Alembic reads it)."""

from service.db.models.activities import Activity
from service.db.models.audit import AuditEvent
from service.db.models.catalog import ServiceDomain, ServiceType
from service.db.models.needs import Need
from service.db.models.offers import Offer, OfferServiceType
from service.db.models.organizations import Organization
from service.db.models.pairings import Pairing
from service.db.models.proposals import Proposal
from service.db.models.rematch import RematchRequest
from service.db.models.runs import MatchRun
from service.db.models.stations import Station
from service.db.models.webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "Activity",
    "AuditEvent",
    "MatchRun",
    "Need",
    "Offer",
    "OfferServiceType",
    "Organization",
    "Pairing",
    "Proposal",
    "RematchRequest",
    "ServiceDomain",
    "ServiceType",
    "Station",
    "WebhookDelivery",
    "WebhookSubscription",
]
