"""Unsigned PSBTs for signer tests: P2WPKH inputs with their witness_utxo, outputs by address,
and BIP-32 derivations on outputs the signer should recognise as its own (change)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from embit.ec import PublicKey
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from chaingate.adapters.chains.bitcoin.address import output_script
from chaingate.adapters.chains.bitcoin.params import ChainParams
from chaingate.domain.custody import parse_path

RBF_SEQUENCE = 0xFFFFFFFD  # BIP-125: the spend may be replaced by a higher fee


@dataclass(frozen=True, slots=True)
class Coin:
    """An output to spend: where it is, its value and its script."""

    txid: str
    vout: int
    value: int
    script: bytes


@dataclass(frozen=True, slots=True)
class Pay:
    address: str
    value: int
    # Change: (master fingerprint, path, compressed public key) the signer can re-derive.
    derivation: tuple[bytes, str, bytes] | None = None


def build_psbt(coins: Sequence[Coin], outputs: Sequence[Pay], params: ChainParams) -> str:
    """Base64 PSBT spending `coins` to `outputs` (inputs replaceable, version 2)."""
    tx = Transaction(
        version=2,
        vin=[TransactionInput(bytes.fromhex(c.txid), c.vout, sequence=RBF_SEQUENCE) for c in coins],
        vout=[
            TransactionOutput(o.value, Script(output_script(o.address, params))) for o in outputs
        ],
    )
    psbt = PSBT(tx)
    for spent, coin in zip(psbt.inputs, coins, strict=True):
        spent.witness_utxo = TransactionOutput(coin.value, Script(coin.script))
    for out, pay in zip(psbt.outputs, outputs, strict=True):
        if pay.derivation is not None:
            fingerprint, path, public_key = pay.derivation
            out.bip32_derivations[PublicKey.parse(public_key)] = DerivationPath(
                fingerprint, list(parse_path(path))
            )
    return str(psbt.to_string())
