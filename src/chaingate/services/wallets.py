"""Watch-only wallets: one account-level extended public key per merchant and network.

A wallet is its key MATERIAL (public key + chain code + script type, domain/wallet_key.py):
the same key in another serialization is the same wallet. One wallet per key and network
holds it; a merchant who registers a key another wallet holds must prove control of it (a
signed message from the key of `.../0/0`), and then takes it over: the earlier holder — a
squatter who copied a public key, or the merchant's own old account — hands out no more
addresses, and the new wallet continues after every index the old one used, so no address is
ever handed out twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chaingate.config import NetworkConfig, Settings
from chaingate.domain.custody import AccountRequest, AddressRole, SignerUnavailable
from chaingate.domain.errors import Conflict, DomainError, NotFound
from chaingate.domain.events import EventType
from chaingate.domain.gap import OnGap
from chaingate.domain.ids import new_id
from chaingate.domain.models import Wallet
from chaingate.ports import ChainFamily, Database, Signer, UnitOfWork, WalletPolicy
from chaingate.services.events import emit
from chaingate.services.idempotency import Claim
from chaingate.services.invoicing import FamilyLookup
from chaingate.services.payloads import DescriptorPayload, document
from chaingate.services.wallet_gap import dumps, wallet_document


@dataclass(frozen=True, slots=True)
class WalletContext:
    """The configuration wallet use cases need: the networks and their chain families."""

    settings: Settings
    family_of: FamilyLookup

    def policy_of(self, network_name: str) -> WalletPolicy | None:
        """The wallet policy of a configured network; None for one no longer configured."""
        network = self.settings.network(network_name)
        return None if network is None else self.family_of(network).wallet_policy

    def network(self, network_name: str) -> tuple[NetworkConfig, ChainFamily]:
        """The configured network and its family. Raises NotFound `network_not_configured`
        for a wallet whose network was removed from the configuration."""
        network = self.settings.network(network_name)
        if network is None:
            raise NotFound(
                f"network {network_name!r} is no longer configured",
                code="network_not_configured",
            )
        return network, self.family_of(network)


DEFAULT_GAP_LIMIT = 20
WATCH_ONLY, MANAGED = "watch_only", "managed"
MAX_GAP_LIMIT = 1000
CLAIM_INDEX = 0  # the receive address whose key signs a claim: the first one every app shows


@dataclass(frozen=True, slots=True)
class NewWallet:
    merchant_id: str
    account_key: str
    address_type: str | None = None  # None: as the family and the key's version decide
    gap_limit: int = DEFAULT_GAP_LIMIT
    on_gap: str = OnGap.WARN.value
    key_origin: str | None = None  # "fingerprint/84h/0h/0h", for the output descriptor
    # A signature of `claim_message` by the key of .../0/0: needed only when another wallet
    # holds the key.
    ownership_proof: str | None = None
    custody: str = WATCH_ONLY  # or MANAGED: the isolated signer holds the account key
    key_ref: str | None = None  # managed: the signer's ref of the account (never a key)


def check_gap_limit(gap_limit: int) -> int:
    if type(gap_limit) is not int or not 1 <= gap_limit <= MAX_GAP_LIMIT:
        raise DomainError(
            f"gap_limit must be an integer between 1 and {MAX_GAP_LIMIT}",
            code="invalid_gap_limit",
            field="gap_limit",
            status=422,
        )
    return gap_limit


def check_on_gap(on_gap: str) -> OnGap:
    try:
        return OnGap(on_gap)
    except ValueError:
        raise DomainError(
            "on_gap must be 'warn' or 'refuse'", code="invalid_on_gap", field="on_gap", status=422
        ) from None


def claim_message(merchant_id: str, network: str, key_identity: str) -> str:
    """What the owner of a key signs to have it serve `merchant_id`: naming the merchant, the
    network and the key, so a signature serves no one else and nowhere else."""
    return (
        f"ChainGate: merchant {merchant_id} receives payments to key {key_identity[:32]} "
        f"on network {network}"
    )


async def register_wallet(
    uow: UnitOfWork,
    request: NewWallet,
    network: NetworkConfig,
    family: ChainFamily,
    now: datetime,
    idempotency: Claim | None = None,
) -> tuple[Wallet, dict[str, Any]]:
    """Store the merchant's key for `network` after checking it derives addresses; returns the
    wallet and its API view (remembered with the Idempotency-Key in the same commit).

    Raises InvalidWallet for an unusable or private key or a wrong key origin, DomainError
    `invalid_gap_limit` / `invalid_on_gap` / `invalid_ownership_proof`, Conflict
    `wallet_exists` (the merchant has a wallet on the network) or `wallet_key_in_use` (another
    wallet holds the key: the problem's `claim` says what to sign).
    """
    check_gap_limit(request.gap_limit)
    on_gap = check_on_gap(request.on_gap)
    address_type = family.address_type(network, request.account_key, request.address_type)
    deriver = family.deriver(network, address_type)
    account_key = deriver.normalize_account_key(request.account_key)
    identity = deriver.key_identity(account_key)
    origin = (
        None
        if request.key_origin is None
        else family.key_origin(network, account_key, request.key_origin)
    )
    if await uow.wallets.for_network(request.merchant_id, network.name) is not None:
        raise Conflict(
            f"a wallet for network {network.name!r} is already registered", code="wallet_exists"
        )
    wallet = Wallet(
        id=new_id("wal"),
        merchant_id=request.merchant_id,
        network=network.name,
        account_key=account_key,
        next_index=0,
        created_at=now,
        address_type=address_type,
        gap_limit=request.gap_limit,
        on_gap=on_gap.value,
        key_identity=identity,
        key_origin=origin,
        custody=request.custody,
        key_ref=request.key_ref,
    )
    holder = await uow.wallets.by_key_identity(network.name, identity)
    if holder is not None:
        proven = _check_proof(wallet, network, family, request.ownership_proof)
        released = await _release(uow, holder, family, now)
        wallet = replace(proven, next_index=released.next_index)
    await uow.wallets.add(wallet)
    view = await wallet_document(uow, wallet, family.wallet_policy)
    if idempotency is not None:
        await idempotency.complete(uow, 201, dumps(view))
    await uow.commit()
    return wallet, view


async def open_managed_account(
    db: Database,
    signer: Signer,
    merchant_id: str,
    network: NetworkConfig,
    family: ChainFamily,
    address_type: str | None,
) -> NewWallet:
    """Ask the signer for the merchant's deposit account on `network` and check its answer;
    answers the wallet to register (`register_wallet`). No transaction stays open while the
    signer answers.

    The request id is the merchant and network, so a retry after any failure gets the same
    account. The gateway derives the account's first address itself and refuses an answer
    where it differs. Raises Conflict `wallet_exists` (without asking the signer),
    SignerRefused, SignerUnavailable.
    """
    async with db.uow() as uow:
        if await uow.wallets.for_network(merchant_id, network.name) is not None:
            raise Conflict(
                f"a wallet for network {network.name!r} is already registered",
                code="wallet_exists",
            )
    account = await signer.create_account(
        AccountRequest(
            request_id=f"wallet:{merchant_id}:{network.name}",
            network=network.name,
            merchant_id=merchant_id,
            role=AddressRole.USER,
            address_type=address_type,
        )
    )
    key = account.account_key
    if key is None or account.role is not AddressRole.USER:
        raise SignerUnavailable("the signer answered an account that cannot derive deposits")
    try:
        kind = family.address_type(network, key, account.address_type)
        deriver = family.deriver(network, kind)
        derived = deriver.derive(deriver.normalize_account_key(key), 0)
    except (DomainError, ValueError):
        raise SignerUnavailable("the signer answered an unusable account key") from None
    if derived != account.address:
        raise SignerUnavailable("the signer's account key does not derive the address it named")
    return NewWallet(
        merchant_id=merchant_id,
        account_key=key,
        address_type=kind,
        custody=MANAGED,
        key_ref=str(account.key_ref),
    )


async def claim_wallet_key(
    uow: UnitOfWork,
    merchant_id: str,
    wallet_id: str,
    ownership_proof: str | None,
    ctx: WalletContext,
    now: datetime,
) -> dict[str, Any]:
    """Give a released wallet its key back on proof of control, taking it from whichever wallet
    holds it; answers the wallet's view. A wallet that holds its key answers as it is.

    Raises NotFound, DomainError `invalid_ownership_proof`, Conflict `wallet_key_in_use`
    without a proof (its `claim` says what to sign).
    """
    wallet = await uow.wallets.get(merchant_id, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet {wallet_id!r}")
    network, family = ctx.network(wallet.network)
    if wallet.key_identity is not None:
        return await wallet_document(uow, wallet, family.wallet_policy)
    identity = family.deriver(network, wallet.address_type).key_identity(wallet.account_key)
    claimant = replace(wallet, key_identity=identity)
    _check_proof(claimant, network, family, ownership_proof)
    next_index = wallet.next_index
    holder = await uow.wallets.by_key_identity(network.name, identity)
    if holder is not None:
        next_index = max(next_index, (await _release(uow, holder, family, now)).next_index)
    await uow.wallets.hold_key(wallet.id, identity, next_index)
    claimed = await uow.wallets.get(merchant_id, wallet_id)
    assert claimed is not None
    view = await wallet_document(uow, claimed, family.wallet_policy)
    await uow.commit()
    return view


def _check_proof(
    wallet: Wallet, network: NetworkConfig, family: ChainFamily, proof: str | None
) -> Wallet:
    """`wallet` (with its key identity) once `proof` shows its merchant controls the key.
    Raises Conflict `wallet_key_in_use` without a proof, `invalid_ownership_proof`."""
    assert wallet.key_identity is not None
    message = claim_message(wallet.merchant_id, network.name, wallet.key_identity)
    if proof is None:
        address = family.deriver(network, wallet.address_type).derive(
            wallet.account_key, CLAIM_INDEX
        )
        raise Conflict(
            "another wallet already holds this key on this network. If it is yours, sign "
            f"claim.message with the key of your first receive address ({address}, .../0/0) and "
            "send the signature as ownership_proof: the key then moves to this wallet",
            code="wallet_key_in_use",
            extra={"claim": {"message": message, "address": address, "index": CLAIM_INDEX}},
        )
    if not family.proves_key_control(
        network, wallet.account_key, wallet.address_type, message, proof
    ):
        raise DomainError(
            "ownership_proof is not a signature of claim.message by the key of .../0/0 "
            f"(the message: {message!r})",
            code="invalid_ownership_proof",
            field="ownership_proof",
            status=422,
        )
    return wallet


async def _release(uow: UnitOfWork, holder: Wallet, family: ChainFamily, now: datetime) -> Wallet:
    """Take the key from `holder` and tell its merchant; the released wallet as it was locked."""
    released = await uow.wallets.release_key(holder.id)
    await emit(
        uow,
        merchant_id=released.merchant_id,
        event_type=EventType.WALLET_KEY_CLAIMED,
        data={"wallet": await wallet_document(uow, released, family.wallet_policy)},
        at=now,
    )
    return released


async def change_gap_policy(
    uow: UnitOfWork,
    merchant_id: str,
    wallet_id: str,
    ctx: WalletContext,
    *,
    gap_limit: int | None = None,
    on_gap: str | None = None,
) -> dict[str, Any]:
    """Set the wallet's gap limit and/or gap policy; answers the wallet's view. Raises NotFound
    for another merchant's or an unknown wallet, DomainError `invalid_gap_limit`,
    `invalid_on_gap`."""
    if gap_limit is not None:
        check_gap_limit(gap_limit)
    if on_gap is not None:
        check_on_gap(on_gap)
    wallet = await uow.wallets.get(merchant_id, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet {wallet_id!r}")
    changed = replace(
        wallet,
        gap_limit=wallet.gap_limit if gap_limit is None else gap_limit,
        on_gap=wallet.on_gap if on_gap is None else on_gap,
    )
    await uow.wallets.set_gap_policy(wallet.id, changed.gap_limit, changed.on_gap)
    view = await wallet_document(uow, changed, ctx.policy_of(changed.network))
    await uow.commit()
    return view


async def wallet_view(
    uow: UnitOfWork, merchant_id: str, wallet_id: str, ctx: WalletContext
) -> dict[str, Any]:
    """The merchant's wallet as the API answers it. Raises NotFound."""
    wallet = await uow.wallets.get(merchant_id, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet {wallet_id!r}")
    return await wallet_document(uow, wallet, ctx.policy_of(wallet.network))


async def wallet_views(
    uow: UnitOfWork, merchant_id: str, ctx: WalletContext
) -> list[dict[str, Any]]:
    return [
        await wallet_document(uow, wallet, ctx.policy_of(wallet.network))
        for wallet in await uow.wallets.list(merchant_id)
    ]


async def output_descriptor(
    uow: UnitOfWork, merchant_id: str, wallet_id: str, ctx: WalletContext
) -> dict[str, Any]:
    """The output descriptor of the wallet's receive addresses and the range handed out.
    Raises NotFound (code `descriptor_not_available` where the family has none,
    `network_not_configured`)."""
    wallet = await uow.wallets.get(merchant_id, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet {wallet_id!r}")
    network, family = ctx.network(wallet.network)
    descriptor = family.output_descriptor(
        network, wallet.account_key, wallet.address_type, wallet.key_origin
    )
    if descriptor is None:
        raise NotFound(
            f"wallets on network {wallet.network!r} have no output descriptor (accounts, not "
            "output scripts: a wallet app finds every address of the xpub itself)",
            code="descriptor_not_available",
        )
    checksum = descriptor.rsplit("#", 1)[1]
    return document(
        DescriptorPayload(
            wallet_id=wallet.id,
            network=wallet.network,
            descriptor=descriptor,
            checksum=checksum,
            range=[0, max(wallet.next_index - 1, 0)],
            addresses_handed_out=wallet.next_index,
            key_origin=wallet.key_origin,
            origin_known=wallet.key_origin is not None,
            timestamp=int(wallet.created_at.timestamp()),
        )
    )
