from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from chaingate.domain.models import Wallet
from chaingate.entrypoints.api.deps import ContainerDep, WalletsRead, WalletsWrite
from chaingate.entrypoints.api.idempotent import IDEMPOTENT, dumps, run_idempotent
from chaingate.entrypoints.api.problems import problem_responses
from chaingate.entrypoints.api.schemas import WalletCreate, WalletOut
from chaingate.services.idempotency import Claim
from chaingate.services.invoicing import resolve_network
from chaingate.services.views import iso
from chaingate.services.wallets import register_wallet

router = APIRouter(prefix="/v1/wallets", tags=["wallets"])


def present_wallet(wallet: Wallet) -> dict[str, Any]:
    return {
        "id": wallet.id,
        "network": wallet.network,
        "xpub": wallet.account_key,
        "next_index": wallet.next_index,
        "created_at": iso(wallet.created_at),
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
    """Register the watch-only account key addresses are derived from (`.../0/i`)."""
    network = resolve_network(container.settings, body.network)

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        async with container.db.uow() as uow:
            wallet = await register_wallet(
                uow,
                caller.merchant_id,
                network,
                body.xpub,
                container.derivers[network.kind],
                container.clock.now(),
            )
            view = present_wallet(wallet)
            if claim is not None:
                await claim.complete(uow, 201, dumps(view))
                await uow.commit()
        return 201, view

    return await run_idempotent(request, container, caller, action)


@router.get("", response_model=list[WalletOut])
async def list_wallets(caller: WalletsRead, container: ContainerDep) -> list[dict[str, Any]]:
    async with container.db.uow() as uow:
        return [present_wallet(w) for w in await uow.wallets.list(caller.merchant_id)]
