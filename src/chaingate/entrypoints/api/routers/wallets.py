from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from chaingate.entrypoints.api.deps import ContainerDep, WalletsRead, WalletsWrite
from chaingate.entrypoints.api.idempotent import IDEMPOTENT, run_idempotent
from chaingate.entrypoints.api.problems import problem_responses
from chaingate.entrypoints.api.schemas import WalletClaim, WalletCreate, WalletUpdate
from chaingate.services.idempotency import Claim
from chaingate.services.invoicing import resolve_network
from chaingate.services.payloads import DescriptorPayload, WalletPayload
from chaingate.services.wallets import (
    NewWallet,
    change_gap_policy,
    claim_wallet_key,
    open_managed_account,
    output_descriptor,
    register_wallet,
    wallet_view,
    wallet_views,
)

router = APIRouter(prefix="/v1/wallets", tags=["wallets"])


@router.post(
    "",
    status_code=201,
    response_model=WalletPayload,
    responses=problem_responses(400, 409, 413, 422, 503),
    dependencies=IDEMPOTENT,
)
async def create(
    body: WalletCreate, request: Request, caller: WalletsWrite, container: ContainerDep
) -> Response:
    """Register the account key addresses are derived from (`.../0/i`): your xpub
    (`custody: "watch_only"`, the default), or one the isolated signer makes (`custody:
    "managed"`; 503 `signer_unavailable` while it cannot be reached, and nothing is stored).

    Bitcoin-family answers carry a `gap_limit` warning and the `gap` figures: read them before
    using the same key in a wallet app. A key another wallet holds (in any serialization)
    answers 409 `wallet_key_in_use` with a `claim` to sign; send the signature as
    `ownership_proof` to take the key over. Honours `Idempotency-Key`.
    """
    network = resolve_network(container.settings, body.network)
    command = NewWallet(
        merchant_id=caller.merchant_id,
        account_key=body.xpub or "",
        address_type=body.address_type,
        gap_limit=body.gap_limit,
        on_gap=body.on_gap,
        key_origin=body.key_origin,
        ownership_proof=body.ownership_proof,
    )

    family = container.family(network)

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        wallet = command
        if body.custody == "managed":
            managed = await open_managed_account(
                container.db,
                container.signer,
                caller.merchant_id,
                network,
                family,
                body.address_type,
            )
            wallet = replace(
                managed,
                gap_limit=body.gap_limit,
                on_gap=body.on_gap,
                ownership_proof=body.ownership_proof,
            )
        async with container.db.uow() as uow:
            _, view = await register_wallet(
                uow, wallet, network, family, container.clock.now(), claim
            )
        return 201, view

    return await run_idempotent(request, container, caller, action)


@router.get("", response_model=list[WalletPayload])
async def list_wallets(caller: WalletsRead, container: ContainerDep) -> list[dict[str, Any]]:
    async with container.db.uow() as uow:
        return await wallet_views(uow, caller.merchant_id, container.wallet_context)


@router.get("/{wallet_id}", response_model=WalletPayload, responses=problem_responses(404))
async def get(wallet_id: str, caller: WalletsRead, container: ContainerDep) -> dict[str, Any]:
    """The wallet, with its current run of unused addresses and the gap limit its wallet app
    needs (`gap`; null where the family has no gap rule, EVM)."""
    async with container.db.uow() as uow:
        return await wallet_view(uow, caller.merchant_id, wallet_id, container.wallet_context)


@router.get(
    "/{wallet_id}/descriptor", response_model=DescriptorPayload, responses=problem_responses(404)
)
async def descriptor(
    wallet_id: str, caller: WalletsRead, container: ContainerDep
) -> dict[str, Any]:
    """The output descriptor of the wallet's receive addresses (BIP-380 checksum) and the range
    handed out: import it into Bitcoin Core, Sparrow or Electrum to see every payment. 404
    `descriptor_not_available` where the family has none (EVM)."""
    async with container.db.uow() as uow:
        return await output_descriptor(uow, caller.merchant_id, wallet_id, container.wallet_context)


@router.patch(
    "/{wallet_id}", response_model=WalletPayload, responses=problem_responses(400, 404, 413)
)
async def update(
    wallet_id: str, body: WalletUpdate, caller: WalletsWrite, container: ContainerDep
) -> dict[str, Any]:
    """Change the wallet's gap limit and/or what happens past it (`on_gap`)."""
    async with container.db.uow() as uow:
        return await change_gap_policy(
            uow,
            caller.merchant_id,
            wallet_id,
            container.wallet_context,
            gap_limit=body.gap_limit,
            on_gap=body.on_gap,
        )


@router.post(
    "/{wallet_id}/claim",
    response_model=WalletPayload,
    responses=problem_responses(400, 404, 409, 413, 422),
)
async def claim(
    wallet_id: str, body: WalletClaim, caller: WalletsWrite, container: ContainerDep
) -> dict[str, Any]:
    """Take this wallet's key back from the wallet that holds it, on proof of control: the
    signature of `claim.message` (a 409 answer without `ownership_proof` names it) by the key
    of `.../0/0`."""
    async with container.db.uow() as uow:
        return await claim_wallet_key(
            uow,
            caller.merchant_id,
            wallet_id,
            body.ownership_proof,
            container.wallet_context,
            container.clock.now(),
        )
