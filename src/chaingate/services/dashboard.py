"""What the merchant dashboard shows: overview figures, invoice search and detail, wallets.

Read-only use cases; the dashboard's changes go through the existing services (webhooks,
merchants). Amounts are summed as integers of base units and rendered as decimal strings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from chaingate.config import Settings
from chaingate.domain.errors import NotFound
from chaingate.domain.gap import GapStatus
from chaingate.domain.models import Event, Invoice, Payment, Wallet, WebhookAttempt
from chaingate.domain.money import format_amount
from chaingate.domain.records import DeliveryView, InvoiceSearch
from chaingate.ports import UnitOfWork
from chaingate.services.invoicing import FamilyLookup
from chaingate.services.wallet_gap import wallet_gap

PAGE_SIZE = 25
OVERVIEW_DAYS = 14


def amount_text(settings: Settings, network: str, asset: str, units: int) -> str:
    """Base units as a decimal string with the asset symbol; raw units if the asset is unknown."""
    config = settings.network(network)
    decimals = config.asset_decimals(asset) if config is not None else None
    if decimals is None:
        return f"{units} base units of {asset}"
    return f"{format_amount(units, decimals)} {asset}"


@dataclass(frozen=True, slots=True)
class AssetVolume:
    """Settled volume of one asset on one network, per day of the overview window."""

    network: str
    asset: str
    per_day: list[int]

    @property
    def total(self) -> int:
        return sum(self.per_day)


@dataclass(frozen=True, slots=True)
class Overview:
    days: list[date]
    volumes: list[AssetVolume]
    status_counts: dict[str, int]  # by status: settled in the window, others created in it
    pending: dict[tuple[str, str], int]  # (network, asset) -> paid, awaiting confirmations


async def overview(
    uow: UnitOfWork, merchant_id: str, now: datetime, days: int = OVERVIEW_DAYS
) -> Overview:
    """Settled volume per day and asset, status counts, and the amount awaiting confirmations."""
    today = now.astimezone(UTC).date()
    window = [today - timedelta(days=days - 1 - n) for n in range(days)]
    since = datetime.combine(window[0], datetime.min.time(), tzinfo=UTC)
    rows = await uow.reports.amounts_since(merchant_id, since)
    per_asset: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * days)
    counts: dict[str, int] = defaultdict(int)
    pending: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        key = (row.network, row.asset)
        day = row.day.astimezone(UTC).date()
        if row.status == "processing":
            pending[key] += row.amount_paid
        if not window[0] <= day <= today:
            continue
        counts[row.status] += 1
        if row.status == "settled":
            per_asset[key][(day - window[0]).days] += row.amount_paid
    volumes = [AssetVolume(n, a, per_asset[(n, a)]) for n, a in sorted(per_asset)]
    return Overview(window, volumes, dict(counts), dict(pending))


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    day: date
    units: int


def chart_bars(per_day: list[int], days: list[date], *, width: int, height: int) -> list[Bar]:
    """Bar geometry in whole pixels for an inline SVG chart, scaled to the tallest day."""
    tallest = max(per_day, default=0) or 1
    slot = width // max(len(per_day), 1)
    bars = []
    for n, units in enumerate(per_day):
        h = units * height // tallest
        if units and h == 0:
            h = 1  # a non-zero day stays visible
        bars.append(Bar(n * slot + 2, height - h, max(slot - 4, 1), h, days[n], units))
    return bars


@dataclass(frozen=True, slots=True)
class InvoicePage:
    invoices: list[Invoice]
    next_cursor: str | None


async def find_invoices(
    uow: UnitOfWork, merchant_id: str, search: InvoiceSearch, cursor: str | None
) -> InvoicePage:
    rows = await uow.reports.search_invoices(
        merchant_id, search, before_id=cursor, limit=PAGE_SIZE + 1
    )
    page = rows[:PAGE_SIZE]
    return InvoicePage(page, page[-1].id if len(rows) > PAGE_SIZE else None)


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    view: DeliveryView
    attempts: list[WebhookAttempt]


@dataclass(frozen=True, slots=True)
class InvoiceDetail:
    invoice: Invoice
    payments: list[Payment]
    timeline: list[Event]
    deliveries: list[DeliveryDetail] = field(default_factory=list)


async def invoice_detail(uow: UnitOfWork, merchant_id: str, invoice_id: str) -> InvoiceDetail:
    """The invoice with its payments, its events in order and their webhook deliveries.

    Raises NotFound, also for another merchant's invoice.
    """
    invoice = await uow.invoices.get(invoice_id, merchant_id=merchant_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found", field="invoice_id")
    payments = await uow.payments.for_invoice(invoice.id)
    timeline = await uow.reports.events_for_invoice(merchant_id, invoice.id)
    views = await uow.reports.deliveries_for_events(merchant_id, [e.id for e in timeline])
    attempts = await uow.reports.attempts([v.delivery.id for v in views])
    deliveries = [DeliveryDetail(v, attempts[v.delivery.id]) for v in views]
    return InvoiceDetail(invoice, payments, timeline, deliveries)


@dataclass(frozen=True, slots=True)
class WalletView:
    wallet: Wallet
    gap: GapStatus | None  # None where the network's family has no gap rule (EVM)
    descriptor: str | None  # the output descriptor, where the family has one
    no_gap_rule: bool = False  # the family says its wallets have no gap limit

    @property
    def gap_warning(self) -> bool:
        """True when a wallet app with the configured gap limit misses some handed-out address
        (the same figures as GET /v1/wallets/{id})."""
        return self.gap is not None and self.gap.needed_gap_limit > self.wallet.gap_limit


async def wallets(
    uow: UnitOfWork, merchant_id: str, settings: Settings, family_of: FamilyLookup
) -> list[WalletView]:
    views = []
    for wallet in await uow.wallets.list(merchant_id):
        network = settings.network(wallet.network)
        if network is None:  # a network no longer configured: its rules are unknown
            views.append(WalletView(wallet, None, None))
            continue
        family = family_of(network)
        gap = await wallet_gap(uow, wallet) if family.wallet_policy.gap_limit else None
        descriptor = family.output_descriptor(
            network, wallet.account_key, wallet.address_type, wallet.key_origin
        )
        views.append(WalletView(wallet, gap, descriptor, not family.wallet_policy.gap_limit))
    return views
