"""`/v1/treasury`: a merchant's hot, tokens_collector and cold address per network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from chaingate.domain.custody import KeyStoreKind
from chaingate.domain.models import TreasuryAddress
from chaingate.entrypoints.api.deps import ContainerDep, WalletsRead, WalletsWrite
from chaingate.entrypoints.api.idempotent import IDEMPOTENT, dumps, run_idempotent
from chaingate.entrypoints.api.problems import problem_responses
from chaingate.entrypoints.api.schemas import TreasuryCreate, TreasuryOut
from chaingate.services import treasury
from chaingate.services.idempotency import Claim
from chaingate.services.invoicing import resolve_network
from chaingate.services.payloads import iso

router = APIRouter(prefix="/v1/treasury", tags=["treasury"])


def present(entry: TreasuryAddress) -> dict[str, Any]:
    warnings = []
    if entry.role == "cold" and entry.account_key is None:
        warnings.append(
            {
                "code": "signer_policy",
                "detail": (
                    "Sweeps to cold storage are signed only to addresses the signer's operator "
                    "listed: chaingate signer policy add-destination --network "
                    f"{entry.network} --merchant {entry.merchant_id} --address {entry.address}"
                ),
            }
        )
    return {
        "id": entry.id,
        "network": entry.network,
        "role": entry.role,
        "custody": entry.custody,
        "address": entry.address,
        "xpub": entry.account_key,
        "key_ref": entry.key_ref,
        "address_type": entry.address_type,
        "created_at": iso(entry.created_at),
        "warnings": warnings,
    }


@router.post(
    "",
    status_code=201,
    response_model=TreasuryOut,
    responses=problem_responses(400, 409, 413, 503),
    dependencies=IDEMPOTENT,
)
async def create(
    body: TreasuryCreate, request: Request, caller: WalletsWrite, container: ContainerDep
) -> Response:
    """Register where money goes on a network: `hot` and `tokens_collector` (EVM) keys are
    made by the isolated signer (503 `signer_unavailable` while it cannot be reached);
    `cold` is your own address or xpub, watch-only. One of each per network."""
    network = resolve_network(container.settings, body.network)
    family = container.family(network)

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        now = container.clock.now()
        if body.role == "cold":
            address_type = deriver = None
            if body.xpub is not None:
                address_type = family.address_type(network, body.xpub, body.address_type)
                deriver = container.deriver(network, address_type)
            entry = await treasury.cold_entry(
                container.db,
                family,
                caller.merchant_id,
                network,
                now,
                address=body.address,
                xpub=body.xpub,
                deriver=deriver,
                address_type=address_type,
            )
        else:
            entry = await treasury.managed_entry(
                container.db,
                container.signer,
                family,
                caller.merchant_id,
                network,
                body.role,
                KeyStoreKind(body.store),
                now,
            )
        view = present(entry)
        async with container.db.uow() as uow:
            await treasury.add(uow, entry)
            if claim is not None:
                await claim.complete(uow, 201, dumps(view))
            await uow.commit()
        return 201, view

    return await run_idempotent(request, container, caller, action)


@router.get("", response_model=list[TreasuryOut])
async def list_treasury(caller: WalletsRead, container: ContainerDep) -> list[dict[str, Any]]:
    async with container.db.uow() as uow:
        entries = await uow.treasury.list(caller.merchant_id)
    return [present(entry) for entry in entries]


@router.get("/{entry_id}", response_model=TreasuryOut, responses=problem_responses(404))
async def get_treasury(
    entry_id: str, caller: WalletsRead, container: ContainerDep
) -> dict[str, Any]:
    async with container.db.uow() as uow:
        entry = await treasury.get(uow, caller.merchant_id, entry_id)
    return present(entry)
