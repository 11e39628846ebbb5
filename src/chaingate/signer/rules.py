"""The family-neutral rules: who may send where, how much, and when a nonce or an outpoint may
be signed a second time. Inputs are what a family read from the payload (`Reading`) and the
signer's own records; nothing here trusts a claim of the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from chaingate.domain.custody import AddressRole, RefusalReason, SignRequest
from chaingate.signer.families import Movement, NetworkPolicy, Reading, Refusal
from chaingate.signer.policy import Destination, Policy
from chaingate.signer.state import AccountRecord, SpendRecord

# Keys that pay outward: their amounts count against the per-transaction and per-day limits.
LIMITED_ROLES = frozenset({AddressRole.HOT, AddressRole.TOKENS_COLLECTOR})


def signing_identity(reading: Reading) -> tuple[str | None, AddressRole]:
    """The one (merchant, role) all signing keys belong to. Raises Refusal(mixed_keys)."""
    merchants = {account.merchant_id for account in reading.signers}
    roles = {account.role for account in reading.signers}
    if len(merchants) != 1 or len(roles) != 1:
        raise Refusal(
            RefusalReason.MIXED_KEYS, "one request signs with keys of one merchant and one role"
        )
    return merchants.pop(), roles.pop()


def payments(reading: Reading) -> tuple[Movement, ...]:
    """The movements that leave the signing accounts (change and self-sends excluded)."""
    return tuple(m for m in reading.movements if not m.change)


def check_destinations(
    request: SignRequest, reading: Reading, policy: Policy, network: NetworkPolicy
) -> None:
    """Every payment goes where its key's role may send. Raises Refusal."""
    merchant, role = signing_identity(reading)
    cold = policy.listed(request.network, merchant, frozenset({"cold"}))
    for movement in payments(reading):
        if movement.via == "forwarder" and role is not AddressRole.GAS:
            raise Refusal(RefusalReason.UNKNOWN_CALL, "only gas keys call forwarder factories")
        if not _allowed(movement, role, merchant, cold, policy, request.network, network):
            raise Refusal(
                RefusalReason.DESTINATION_NOT_ALLOWED,
                f"a {role.value} key may not send to {movement.destination}",
            )


def _allowed(
    movement: Movement,
    role: AddressRole,
    merchant: str | None,
    cold: Mapping[str, Destination],
    policy: Policy,
    network_name: str,
    network: NetworkPolicy,
) -> bool:
    owner = movement.owner
    own_account = owner is not None and owner.merchant_id == merchant
    if role is AddressRole.USER:
        # A deposit key sweeps only to its merchant's hot or tokens_collector accounts (which
        # the signer derived itself) or to cold addresses the operator listed.
        if own_account and owner is not None:
            return owner.role in (AddressRole.HOT, AddressRole.TOKENS_COLLECTOR)
        return movement.key in cold
    if role is AddressRole.TOKENS_COLLECTOR:
        # Gas top-ups, in the native coin, of the merchant's own deposit addresses only.
        return (
            own_account
            and owner is not None
            and owner.role is AddressRole.USER
            and movement.asset == network.native_symbol
        )
    if role is AddressRole.HOT:
        if not network.restrict_payouts:
            return True
        listed = policy.listed(network_name, merchant, frozenset({"cold", "payout"}))
        return own_account or movement.key in listed
    if role is AddressRole.GAS:
        # A gas key has no power over funds: it only makes forwarders flush to cold storage.
        if movement.via != "forwarder" or movement.amount not in (None, 0):
            return False
        if merchant is not None:
            return movement.key in cold
        # An operator's gas key serves every merchant: any listed cold address will do.
        return movement.key in policy.listed(network_name, None, frozenset({"cold"}), every=True)
    return False


def limited_amounts(reading: Reading) -> dict[str, int]:
    """Per asset, what the payments of keys that pay outward move (limits apply to these)."""
    _, role = signing_identity(reading)
    if role not in LIMITED_ROLES:
        return {}
    totals: dict[str, int] = {}
    for movement in payments(reading):
        if movement.amount:
            totals[movement.asset] = totals.get(movement.asset, 0) + movement.amount
    return totals


def check_limits(
    reading: Reading,
    network_name: str,
    network: NetworkPolicy,
    spent_today: Callable[[str | None, str], int],
) -> dict[str, int]:
    """Refuse amounts over the per-transaction or per-day limit; answer what to add to the
    day's counters. Raises Refusal."""
    merchant, _ = signing_identity(reading)
    amounts = limited_amounts(reading)
    for asset, amount in amounts.items():
        per_tx, per_day = network.limit_units(asset)
        if per_tx is not None and amount > per_tx:
            raise Refusal(
                RefusalReason.AMOUNT_OVER_TX_LIMIT,
                f"{amount} base units of {asset} over the per-transaction limit {per_tx}",
            )
        if per_day is not None and spent_today(merchant, asset) + amount > per_day:
            raise Refusal(
                RefusalReason.AMOUNT_OVER_DAILY_LIMIT,
                f"{amount} base units of {asset} would pass today's limit {per_day} on "
                f"{network_name}",
            )
    return amounts


def payment_summary(reading: Reading) -> tuple[tuple[str, str, int], ...]:
    """What the nonce/outpoint guard remembers of a transaction: its payments, sorted."""
    return tuple(
        sorted(
            (m.key, m.asset, m.amount if m.amount is not None else -1) for m in payments(reading)
        )
    )


def check_guard(
    request: SignRequest,
    reading: Reading,
    fee_rate: tuple[int, ...],
    recorded: Callable[[str], SpendRecord | None],
) -> bool:
    """Refuse a second, different transaction for a nonce or an outpoint the signer already
    signed for, unless `request.replaces` names it and this is a deliberate replacement: the
    same destinations paid no more than before (or nothing but the fee: a cancellation), with
    a strictly higher fee in every component. Answers whether it is such a replacement.
    Raises Refusal(nonce_used | outpoint_spent | not_a_replacement)."""
    summary = payment_summary(reading)
    replacing = False
    for spend_key in reading.spends:
        earlier = recorded(spend_key)
        if earlier is None or earlier.request_id == request.request_id:
            continue
        if request.replaces is None or request.replaces.lower() != earlier.txid.lower():
            reason = (
                RefusalReason.NONCE_USED
                if spend_key.startswith("evm:")
                else RefusalReason.OUTPOINT_SPENT
            )
            raise Refusal(
                reason,
                f"{spend_key} was already signed in {earlier.txid} (request "
                f"{earlier.request_id}); a replacement must name it in `replaces`",
            )
        _check_replacement(summary, fee_rate, earlier)
        replacing = True
    return replacing


def _check_replacement(
    summary: tuple[tuple[str, str, int], ...], fee_rate: tuple[int, ...], earlier: SpendRecord
) -> None:
    earlier_rate = tuple(int(part) for part in earlier.fee_rate.split("/"))
    if len(earlier_rate) != len(fee_rate) or any(
        new <= old for new, old in zip(fee_rate, earlier_rate, strict=True)
    ):
        raise Refusal(RefusalReason.NOT_A_REPLACEMENT, "a replacement must pay a higher fee")
    cancelling = all(amount == 0 for _, _, amount in summary)
    if cancelling:
        return
    before = {(key, asset): amount for key, asset, amount in earlier.payments}
    after = {(key, asset): amount for key, asset, amount in summary}
    if set(before) != set(after) or any(after[k] > before[k] for k in after):
        raise Refusal(
            RefusalReason.NOT_A_REPLACEMENT,
            "a replacement pays the same destinations no more than before (or only cancels)",
        )


def account_summary(account: AccountRecord) -> dict[str, object]:
    return {
        "key_ref": str(account.key_ref),
        "role": account.role.value,
        "merchant_id": account.merchant_id,
    }
