"""Bitcoin-family chains in the signer: PSBTs (BIP-174) of P2WPKH inputs, read before signing.

Every input must carry its `witness_utxo` and pay to a P2WPKH script of one of the request's
keys (BIP-143 signs the amount, so a false value makes the signature invalid, never a bigger
spend). Every output is read: change is an output the signer derives itself for the signing
account (from the output's BIP-32 derivation, re-derived and compared), any other output is a
destination the rules must allow. The fee is inputs minus outputs; its rate is checked on the
signed transaction's real virtual size.
"""

from __future__ import annotations

from embit import bip32
from embit.hashes import hash160
from embit.psbt import PSBT
from embit.script import Script, Witness
from embit.transaction import SIGHASH

from chaingate.domain.custody import (
    BitcoinPsbt,
    KeyRef,
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
from chaingate.signer.policy import BitcoinNetworkPolicy
from chaingate.signer.state import AccountRecord

_PURPOSES = {"p2wpkh": 84}


def _network(network: NetworkPolicy) -> BitcoinNetworkPolicy:
    if not isinstance(network, BitcoinNetworkPolicy):
        raise TypeError("a PSBT request on a network of another family")
    return network


def p2wpkh_script(public_key: bytes) -> bytes:
    digest: bytes = hash160(public_key)
    return b"\x00\x14" + digest


def _parse(request: SignRequest) -> PSBT:
    if not isinstance(request.payload, BitcoinPsbt):
        raise Refusal(RefusalReason.MALFORMED_REQUEST, "a Bitcoin-family network signs a PSBT")
    try:
        return PSBT.from_string(request.payload.psbt)
    except Exception as exc:  # embit raises many types for malformed input
        raise Refusal(RefusalReason.MALFORMED_REQUEST, f"not a PSBT: {exc}") from None


class BitcoinSignerFamily:
    name = "bitcoin"

    def account_scheme(
        self, network: NetworkPolicy, address_type: str | None
    ) -> tuple[int, int, str | None]:
        chosen = address_type or "p2wpkh"
        purpose = _PURPOSES.get(chosen)
        if purpose is None:
            raise Refusal(
                RefusalReason.UNSUPPORTED, f"the signer signs P2WPKH accounts, not {chosen}"
            )
        return purpose, _network(network).params.coin_type, chosen

    def address(self, network: NetworkPolicy, public_key: bytes, address_type: str | None) -> str:
        return str(
            Script(p2wpkh_script(public_key)).address(_network(network).params.embit_network())
        )

    def account_key(
        self, network: NetworkPolicy, node: bip32.HDKey, address_type: str | None
    ) -> str:
        version = _network(network).params.xpub_versions[0]
        return str(node.to_base58(version=version))

    def read(self, request: SignRequest, network: NetworkPolicy, keys: KeyContext) -> Reading:
        policy = _network(network)
        psbt = _parse(request)
        if not psbt.inputs or not psbt.outputs:
            raise Refusal(RefusalReason.MALFORMED_REQUEST, "a PSBT without inputs or outputs")
        by_script = self._request_keys(request, keys)
        signers: dict[KeyRef, AccountRecord] = {}
        total_in, spends = 0, []
        for index, spent in enumerate(psbt.inputs):
            utxo = spent.witness_utxo
            if utxo is None:
                raise Refusal(RefusalReason.UNSUPPORTED, f"input {index} has no witness_utxo")
            if spent.sighash_type not in (None, SIGHASH.ALL):
                raise Refusal(RefusalReason.UNSUPPORTED, f"input {index} asks for another sighash")
            script = utxo.script_pubkey.data
            ref = by_script.get(script)
            if ref is None:
                raise Refusal(
                    RefusalReason.UNKNOWN_KEY,
                    f"input {index} is not a P2WPKH output of the request's keys",
                )
            signers[ref] = keys.resolve(ref, request.network)
            total_in += int(utxo.value)
            spends.append(f"utxo:{request.network}:{spent.vin.txid.hex()}:{spent.vin.vout}")
        movements, total_out = [], 0
        for index, output in enumerate(psbt.outputs):
            script = output.script_pubkey
            try:
                address = str(script.address(policy.params.embit_network()))
            except Exception:  # embit: no address form (OP_RETURN, non-standard)
                raise Refusal(
                    RefusalReason.UNSUPPORTED, f"output {index} has no address form"
                ) from None
            value = int(output.value)
            total_out += value
            owner, change_branch = self._owner(output, script.data, request.network, address, keys)
            change = owner is not None and owner in signers.values() and change_branch
            movements.append(
                Movement(
                    address, script.data.hex(), policy.native_symbol, value, owner, change=change
                )
            )
        fee = total_in - total_out
        if fee < 0:
            raise Refusal(RefusalReason.MALFORMED_REQUEST, "outputs spend more than the inputs")
        if fee > policy.max_fee_units():
            raise Refusal(
                RefusalReason.FEE_OVER_CEILING,
                f"fee {fee} over the ceiling {policy.max_fee_units()}",
            )
        return Reading(
            signers=tuple(dict.fromkeys(signers.values())),
            movements=tuple(movements),
            spends=tuple(spends),
            fee=fee,
        )

    def sign(
        self, request: SignRequest, network: NetworkPolicy, reading: Reading, keys: KeyContext
    ) -> Signed:
        policy = _network(network)
        psbt = _parse(request)
        by_script = self._request_keys(request, keys)
        tx = psbt.tx
        stripped = len(tx.serialize())
        for index, spent in enumerate(psbt.inputs):
            ref = by_script[spent.witness_utxo.script_pubkey.data]
            digest = psbt.sighash(index, SIGHASH.ALL)
            signature = keys.sign(ref, digest).der() + bytes([SIGHASH.ALL])
            tx.vin[index].witness = Witness([signature, keys.public_key(ref)])
        raw = bytes(tx.serialize())
        weight = 3 * stripped + len(raw)
        vsize = -(-weight // 4)
        rate_per_kvb = -(-reading.fee * 1000 // vsize)
        if rate_per_kvb > policy.max_fee_rate * 1000:
            raise Refusal(
                RefusalReason.FEE_OVER_CEILING,
                f"{reading.fee} sat over {vsize} vB is {rate_per_kvb / 1000:.1f} sat/vB, "
                f"over the ceiling {policy.max_fee_rate}",
            )
        signed = SignedTransaction(request.request_id, tx.txid().hex(), raw, reading.fee)
        return Signed(signed, (reading.fee, rate_per_kvb))

    @staticmethod
    def _request_keys(request: SignRequest, keys: KeyContext) -> dict[bytes, KeyRef]:
        return {p2wpkh_script(keys.public_key(ref)): ref for ref in request.keys}

    @staticmethod
    def _owner(
        output: object, script: bytes, network: str, address: str, keys: KeyContext
    ) -> tuple[AccountRecord | None, bool]:
        """The signer's account the output pays (re-derived, never taken on trust), and
        whether it is change: the account's change branch `.../1/i`, or the one address of
        a single-key (HSM) account."""
        derivations = getattr(output, "bip32_derivations", {}) or {}
        for derivation in derivations.values():
            ref = keys.file_ref(bytes(derivation.fingerprint), tuple(derivation.derivation))
            if ref is None:
                continue
            try:
                if p2wpkh_script(keys.public_key(ref)) == script:
                    return keys.resolve(ref, network), ref.indexes[3] == 1
            except Refusal:
                continue  # a path of our seed outside every account: not ours to vouch for
        account = keys.account_at(network, address)
        single_key = account is not None and not account.is_hd
        return account, single_key
