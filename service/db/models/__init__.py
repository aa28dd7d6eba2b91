"""Every table, imported so that `metadata` knows them all (Alembic reads it)."""

from service.db.models.audit import AuditEvent
from service.db.models.catalog import ServiceDomain, ServiceType
from service.db.models.needs import Need
from service.db.models.offers import Offer, OfferServiceType
from service.db.models.organizations import Organization
from service.db.models.stations import Station

__all__ = ["AuditEvent", "Need", "Offer", "OfferServiceType", "Organization", "ServiceDomain", "ServiceType", "Station"]
