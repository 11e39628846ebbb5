"""EVM in the signer: EIP-1559 transactions, read before they are signed.

A transaction is understood as exactly one of: a native transfer (empty data), an ERC-20
`transfer` on a token the policy lists (value 0), or a call to a listed forwarder factory
(value 0, a listed selector; the destination read from the call or fixed by the factory).
Anything else is `unknown_call`: the signer never signs what it cannot read.
"""

from __future__ import annotations

from coincurve import PublicKey
from embit import bip32
from eth_hash.auto import keccak

from chaingate.adapters.chains.evm.transactions import (
    MalformedTransaction,
    encode_signed,
    read_address_argument,
    read_erc20_transfer,
    signing_hash,
    transaction_hash,
)
from chaingate.domain.custody import (
    EvmTransaction,
    RefusalReason,
    SignedTransaction,
    SignRequest,
)
from chaingate.signer.families import (
    KeyContext,
    Movement,
    NetworkPolicy,
    Reading,
    Refusal,
    Signed,
)
from chaingate.signer.policy import EvmNetworkPolicy
from chaingate.signer.state import AccountRecord

_XPUB = bytes.fromhex("0488b21e")
_MIN_GAS = 21_000


def eth_address(public_key: bytes) -> str:
    uncompressed = PublicKey(public_key).format(compressed=False)
    return "0x" + keccak(uncompressed[1:])[12:].hex()


def _network(network: NetworkPolicy) -> EvmNetworkPolicy:
    if not isinstance(network, EvmNetworkPolicy):
        raise TypeError("an EVM request on a network of another family")
    return network


class EvmSignerFamily:
    name = "evm"

    def account_scheme(
        self, network: NetworkPolicy, address_type: str | None
    ) -> tuple[int, int, str | None]:
        if address_type is not None:
            raise Refusal(RefusalReason.UNSUPPORTED, "EVM accounts have one address form")
        return 44, _network(network).coin_type, None

    def address(self, network: NetworkPolicy, public_key: bytes, address_type: str | None) -> str:
        return eth_address(public_key)

    def account_key(
        self, network: NetworkPolicy, node: bip32.HDKey, address_type: str | None
    ) -> str:
        return str(node.to_base58(version=_XPUB))

    def read(self, request: SignRequest, network: NetworkPolicy, keys: KeyContext) -> Reading:
        policy = _network(network)
        tx = request.payload
        if not isinstance(tx, EvmTransaction):
            raise Refusal(RefusalReason.MALFORMED_REQUEST, "an EVM network signs EIP-1559 fields")
        if len(request.keys) != 1:
            raise Refusal(RefusalReason.MALFORMED_REQUEST, "an EVM transaction has one signer")
        if tx.chain_id != policy.chain_id:
            raise Refusal(
                RefusalReason.WRONG_CHAIN,
                f"chain id {tx.chain_id}; {request.network} is chain {policy.chain_id}",
            )
        self._check_fees(tx, policy)
        ref = request.keys[0]
        account = keys.resolve(ref, request.network)
        sender = eth_address(keys.public_key(ref))
        movement = self._movement(tx, policy, sender)
        owner = self._owner(movement.key, request, keys, account, sender)
        movement = Movement(
            movement.destination,
            movement.key,
            movement.asset,
            movement.amount,
            owner,
            movement.via,
            change=movement.key == sender and movement.via == "transfer",
        )
        return Reading(
            signers=(account,),
            movements=(movement,),
            spends=(f"evm:{tx.chain_id}:{sender}:{tx.nonce}",),
            fee=tx.max_fee,
            fee_rate=(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
        )

    def sign(
        self, request: SignRequest, network: NetworkPolicy, reading: Reading, keys: KeyContext
    ) -> Signed:
        tx = request.payload
        assert isinstance(tx, EvmTransaction)  # read() refused anything else
        signature = keys.sign(request.keys[0], signing_hash(tx))
        raw = encode_signed(tx, signature.recovery_id, signature.r, signature.s)
        signed = SignedTransaction(request.request_id, transaction_hash(raw), raw, tx.max_fee)
        return Signed(signed, reading.fee_rate)

    @staticmethod
    def _check_fees(tx: EvmTransaction, policy: EvmNetworkPolicy) -> None:
        if tx.gas_limit < _MIN_GAS or tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise Refusal(RefusalReason.MALFORMED_REQUEST, "gas limit or fee fields impossible")
        if tx.max_fee_per_gas > policy.max_fee_per_gas:
            raise Refusal(
                RefusalReason.FEE_OVER_CEILING,
                f"max fee per gas {tx.max_fee_per_gas} wei over {policy.max_fee_per_gas}",
            )
        if tx.max_priority_fee_per_gas > policy.max_priority_fee_per_gas:
            raise Refusal(
                RefusalReason.FEE_OVER_CEILING,
                f"tip {tx.max_priority_fee_per_gas} wei over {policy.max_priority_fee_per_gas}",
            )
        if tx.max_fee > policy.max_fee_units():
            raise Refusal(
                RefusalReason.FEE_OVER_CEILING,
                f"the fee may reach {tx.max_fee} wei, over {policy.max_fee_units()}",
            )

    @staticmethod
    def _movement(tx: EvmTransaction, policy: EvmNetworkPolicy, sender: str) -> Movement:
        try:
            to = tx.to.lower()
            if len(to) != 42 or not to.startswith("0x"):
                raise MalformedTransaction("bad address")
            bytes.fromhex(to[2:])
        except (MalformedTransaction, ValueError):
            raise Refusal(RefusalReason.MALFORMED_REQUEST, f"bad destination {tx.to!r}") from None
        if not tx.data:
            return Movement(to, to, policy.native_symbol, tx.value)
        token = policy.token_at(to)
        if token is not None:
            transfer = read_erc20_transfer(tx.data)
            if transfer is None or tx.value != 0:
                raise Refusal(
                    RefusalReason.UNKNOWN_CALL, f"a call to {token.symbol} other than transfer"
                )
            recipient, amount = transfer
            return Movement(recipient, recipient, token.symbol, amount)
        factory = policy.factory_at(to)
        if factory is not None:
            if tx.value != 0 or "0x" + tx.data[:4].hex() not in factory.selectors:
                raise Refusal(RefusalReason.UNKNOWN_CALL, "not an allowed forwarder factory call")
            if factory.destination_arg is not None:
                destination = read_address_argument(tx.data, factory.destination_arg)
            else:
                destination = factory.destination
            if destination is None:
                raise Refusal(RefusalReason.UNKNOWN_CALL, "the factory call names no destination")
            return Movement(destination, destination, "*", None, via="forwarder")
        raise Refusal(
            RefusalReason.UNKNOWN_CALL, f"call data to {to}, which the policy does not list"
        )

    @staticmethod
    def _owner(
        destination: str,
        request: SignRequest,
        keys: KeyContext,
        signer: AccountRecord,
        sender: str,
    ) -> AccountRecord | None:
        if destination == sender:
            return signer
        for hint in request.destination_keys:
            if eth_address(keys.public_key(hint)) == destination:
                return keys.resolve(hint, request.network)
        return keys.account_at(request.network, destination)
