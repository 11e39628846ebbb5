"""Request and response shapes at the HTTP edge. Amounts are decimal strings, never numbers.

Invoices and payments are answered with the typed payloads events carry (services/payloads.py).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from chaingate.services.payloads import InvoicePayload, WalletWarningPayload

_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}"  # date and time
    r"(:[0-9]{2}([.,][0-9]+)?)?"  # seconds, fraction
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"  # zone; none means UTC
)


def _date_time_text(value: object) -> object:
    # Pydantic would also read "0.0" or "1700000000" as a Unix time; the contract is a date-time.
    if isinstance(value, str) and _DATE_TIME.fullmatch(value) is None:
        raise ValueError("expected an ISO 8601 date-time such as 2025-01-31T12:00:00Z")
    return value


QueryDateTime = Annotated[
    datetime,
    BeforeValidator(_date_time_text),
    Field(description="ISO 8601 date-time; without a zone it is read as UTC."),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InvoiceCreate(Strict):
    amount: StrictStr = Field(
        max_length=100, description='Decimal string in the asset\'s units, e.g. "12.50".'
    )
    currency: StrictStr = Field(max_length=16, description="Asset code: ETH, USDT, ...")
    network: StrictStr = Field(max_length=32, description="A configured network name.")
    order_id: StrictStr | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    expires_in: StrictInt | None = Field(default=None, description="Seconds; default 900.")
    required_confirmations: StrictInt | None = None
    payment_tolerance: StrictStr | None = Field(
        default=None, max_length=10, description='Percent underpayment accepted, e.g. "0.5".'
    )
    # Length (at most 2000) and scheme are checked by the service: `invalid_redirect_url`.
    redirect_url: StrictStr | None = Field(
        default=None,
        description="Where the hosted checkout (/i/{id}) sends the payer once the invoice is "
        "paid. https only (http too in dev mode); at most 2000 characters.",
    )


class InvoiceList(BaseModel):
    data: list[InvoicePayload]
    has_more: bool
    next_cursor: str | None


class WalletCreate(Strict):
    network: StrictStr = Field(max_length=32)
    custody: Literal["watch_only", "managed"] = Field(
        default="watch_only",
        description=(
            "watch_only (default): you hold the keys and give the account xpub. managed: the "
            "gateway's isolated signer makes the account key; the gateway stores only its xpub "
            "and key ref. Invoices derive addresses the same way either way."
        ),
    )
    xpub: StrictStr | None = Field(
        default=None,
        max_length=200,
        description=(
            "watch_only: the account-level extended PUBLIC key (EVM: m/44'/60'/0'; Bitcoin "
            "family: m/84'/c'/0' zpub/vpub/xpub, m/49'/c'/0' ypub/upub, m/86'/c'/0' xpub). "
            "Never a private key. Not given for managed wallets."
        ),
    )
    address_type: Literal["p2wpkh", "p2sh-p2wpkh", "p2tr"] | None = Field(
        default=None,
        description=(
            "Bitcoin family only: the script type of the addresses. Default: what the key's "
            "version says (zpub: p2wpkh, ypub: p2sh-p2wpkh), else p2wpkh. Managed wallets: "
            "p2wpkh."
        ),
    )
    gap_limit: StrictInt = Field(
        default=20,
        ge=1,
        le=1000,
        description=(
            "Bitcoin family: the gap limit of your wallet app (usually 20). Past it, on_gap "
            "decides; the wallet's `gap` says what gap limit the app needs."
        ),
    )
    on_gap: Literal["warn", "refuse"] = Field(
        default="warn",
        description=(
            "Bitcoin family: when the run of unused addresses passes gap_limit, `warn` (the "
            "default) still hands out addresses and sends `wallet.gap_warning` once per multiple "
            "of gap_limit; `refuse` answers new invoices 409 gap_limit_reached. EVM wallets "
            "have no gap rule."
        ),
    )
    key_origin: StrictStr | None = Field(
        default=None,
        max_length=120,
        description=(
            "Bitcoin family: the master key fingerprint and the account's path, as output "
            "descriptors write it (`d34db33f/84h/0h/0h`). Not part of an xpub; without it the "
            "exported descriptor has no origin (enough for watch-only wallets; hardware wallets "
            "need it to sign)."
        ),
    )
    ownership_proof: StrictStr | None = Field(
        default=None,
        max_length=200,
        description=(
            "Only when another wallet holds this key (409 wallet_key_in_use): the signature of "
            "that answer's claim.message by the key of the first receive address (.../0/0), "
            "base64 (Bitcoin signmessage) or 0x hex (Ethereum personal_sign)."
        ),
    )

    @model_validator(mode="after")
    def _key_matches_custody(self) -> WalletCreate:
        if self.custody == "watch_only" and self.xpub is None:
            raise ValueError("a watch_only wallet needs its xpub")
        if self.custody == "managed" and self.xpub is not None:
            raise ValueError("a managed wallet's key comes from the signer: give no xpub")
        return self


class WalletUpdate(Strict):
    gap_limit: StrictInt | None = Field(default=None, ge=1, le=1000)
    on_gap: Literal["warn", "refuse"] | None = None


class WalletClaim(Strict):
    ownership_proof: StrictStr | None = Field(
        default=None,
        max_length=200,
        description="The signature of claim.message by the key of .../0/0 (see POST /v1/wallets).",
    )


class TreasuryCreate(Strict):
    network: StrictStr = Field(max_length=32)
    role: Literal["hot", "tokens_collector", "cold"] = Field(
        description=(
            "hot (pays out) and tokens_collector (EVM: gas for token deposits) are made by the "
            "isolated signer; cold is yours: an address or an xpub, watch-only."
        )
    )
    address: StrictStr | None = Field(default=None, max_length=128, description="cold only")
    xpub: StrictStr | None = Field(default=None, max_length=200, description="cold only")
    address_type: Literal["p2wpkh", "p2sh-p2wpkh", "p2tr"] | None = Field(
        default=None, description="cold xpub on a Bitcoin-family network: its script type"
    )
    store: Literal["file", "pkcs11"] = Field(
        default="file",
        description="hot / tokens_collector: the signer's encrypted keystore, or its HSM",
    )

    @model_validator(mode="after")
    def _custody_fits_role(self) -> TreasuryCreate:
        external = self.address is not None or self.xpub is not None
        if self.role == "cold" and not external:
            raise ValueError("cold storage is an address or an xpub you hold the key of")
        if self.role != "cold" and (external or self.address_type is not None):
            raise ValueError(f"a {self.role} key is made by the signer: give no address or xpub")
        return self


class TreasuryOut(BaseModel):
    id: str
    network: str
    role: str
    custody: str
    address: str | None
    xpub: str | None
    key_ref: str | None
    address_type: str | None
    created_at: str
    warnings: list[WalletWarningPayload]


class WebhookCreate(Strict):
    url: StrictStr = Field(max_length=2000)
    events: list[StrictStr] | None = Field(default=None, max_length=32)
    description: StrictStr | None = Field(default=None, max_length=200)


class WebhookUpdate(Strict):
    url: StrictStr | None = Field(default=None, max_length=2000)
    events: list[StrictStr] | None = Field(default=None, max_length=32)
    description: StrictStr | None = Field(default=None, max_length=200)
    enabled: StrictBool | None = None


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    created_at: str
    secret: str | None = Field(default=None, description="Only in the creation answer.")


class EventOut(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict[str, Any]


class EventList(BaseModel):
    data: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool
