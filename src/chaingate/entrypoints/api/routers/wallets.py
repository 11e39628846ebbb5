from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from chaingate.bootstrap import Container
from chaingate.domain.models import Wallet
from chaingate.entrypoints.api.deps import ContainerDep, WalletsRead, WalletsWrite
from chaingate.entrypoints.api.idempotent import IDEMPOTENT, dumps, run_idempotent
from chaingate.entrypoints.api.problems import problem_responses
from chaingate.entrypoints.api.schemas import WalletCreate, WalletOut, WalletUpdate
from chaingate.ports import WalletPolicy
from chaingate.services.idempotency import Claim
from chaingate.services.invoicing import resolve_network
from chaingate.services.payloads import iso
from chaingate.services.wallets import change_gap_limit, register_wallet, wallet_warnings

router = APIRouter(prefix="/v1/wallets", tags=["wallets"])


def present_wallet(wallet: Wallet, policy: WalletPolicy | None) -> dict[str, Any]:
    warnings = [] if policy is None else wallet_warnings(policy, wallet)
    return {
        "id": wallet.id,
        "network": wallet.network,
        "xpub": wallet.account_key,
        "address_type": wallet.address_type,
        "gap_limit": wallet.gap_limit,
        "next_index": wallet.next_index,
        "created_at": iso(wallet.created_at),
        "warnings": [{"code": w.code, "detail": w.detail} for w in warnings],
    }


@router.post(
    "",
    status_code=201,
    response_model=WalletOut,
    responses=problem_responses(400, 409, 413),
    dependencies=IDEMPOTENT,
)
async def create(
    body: WalletCreate, request: Request, caller: WalletsWrite, container: ContainerDep
) -> Response:
    """Register the watch-only account key addresses are derived from (`.../0/i`).

    Bitcoin-family answers carry a `gap_limit` warning: read it before using the same key in
    a wallet app.
    """
    network = resolve_network(container.settings, body.network)
    address_type = container.address_type_for(network, body.xpub, body.address_type)
    deriver = container.deriver(network, address_type)

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        async with container.db.uow() as uow:
            wallet = await register_wallet(
                uow,
                caller.merchant_id,
                network,
                body.xpub,
                deriver,
                container.clock.now(),
                address_type=address_type,
                gap_limit=body.gap_limit,
            )
            view = present_wallet(wallet, container.family(network).wallet_policy)
            if claim is not None:
                await claim.complete(uow, 201, dumps(view))
                await uow.commit()
        return 201, view

    return await run_idempotent(request, container, caller, action)


@router.get("", response_model=list[WalletOut])
async def list_wallets(caller: WalletsRead, container: ContainerDep) -> list[dict[str, Any]]:
    async with container.db.uow() as uow:
        found = await uow.wallets.list(caller.merchant_id)
    return [present_wallet(w, _policy(container, w.network)) for w in found]


@router.patch("/{wallet_id}", response_model=WalletOut, responses=problem_responses(400, 404, 413))
async def update(
    wallet_id: str, body: WalletUpdate, caller: WalletsWrite, container: ContainerDep
) -> dict[str, Any]:
    """Change the wallet's gap limit (how many unpaid addresses in a row may be handed out)."""
    async with container.db.uow() as uow:
        wallet = await change_gap_limit(uow, caller.merchant_id, wallet_id, body.gap_limit)
    return present_wallet(wallet, _policy(container, wallet.network))


def _policy(container: Container, network_name: str) -> WalletPolicy | None:
    """The wallet policy of a configured network; None for one no longer configured."""
    network = container.settings.network(network_name)
    return None if network is None else container.family(network).wallet_policy
