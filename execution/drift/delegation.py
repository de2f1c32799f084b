"""Set / revoke / read the Drift User account's delegate (``update_user_delegate``).

Set = ``update_user_delegate(sub_account_id, delegate)`` signed by the OWNER (the User account's
authority); revoke = the same with the default pubkey (``11111111111111111111111111111111``).
A delegate can place, cancel and modify orders for the account; it cannot withdraw, change the
delegate, or close the account (see docs/DELEGATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from anchorpy.program.context import Context
from solders.pubkey import Pubkey

from execution.drift.chain import DriftChain
from execution.drift.user_state import snapshot_from_decoded
from execution.signers.base import Signer, SignerError
from execution.solana_send.landing import Submission
from execution.solana_send.rpc import RpcError
from execution.solana_send.sender import TxSender
from execution.solana_send.tx import SignedTx

NO_DELEGATE = Pubkey.default()


class DelegationError(Exception):
    pass


@dataclass(frozen=True)
class DelegateStatus:
    user: str
    authority: str
    delegate: str
    sub_account_id: int
    slot: int

    @property
    def has_delegate(self) -> bool:
        return self.delegate != str(NO_DELEGATE)

    def to_json(self) -> dict[str, object]:
        return {
            "user": self.user,
            "authority": self.authority,
            "delegate": self.delegate if self.has_delegate else None,
            "sub_account_id": self.sub_account_id,
            "slot": self.slot,
        }


async def delegate_status(chain: DriftChain) -> DelegateStatus:
    slot, data = await chain.rpc.get_account(chain.user_pubkey)
    if data is None:
        raise DelegationError(
            f"User account {chain.user_pubkey} not found (authority {chain.authority}, "
            f"sub-account {chain.sub_account_id}, program {chain.program_id})"
        )
    snap = snapshot_from_decoded(chain.decode(data), slot)
    return DelegateStatus(
        user=str(chain.user_pubkey),
        authority=snap.authority,
        delegate=snap.delegate,
        sub_account_id=snap.sub_account_id,
        slot=slot,
    )


def update_delegate_ix(chain: DriftChain, delegate: Pubkey):  # type: ignore[no-untyped-def]
    return chain.program.instruction["update_user_delegate"](
        chain.sub_account_id,
        delegate,
        ctx=Context(accounts={"user": chain.user_pubkey, "authority": chain.authority}),
    )


async def set_delegate(chain: DriftChain, sender: TxSender, owner: Signer, delegate: Pubkey) -> Submission:
    """Send ``update_user_delegate`` signed by ``owner`` and follow it until the chain decides
    (``landed``, or provably not: never re-signed before)."""
    if owner.pubkey() != chain.authority:
        raise SignerError(
            f"the owner signer is {owner.pubkey()}, but the account's authority is "
            f"{chain.authority}: only the owner can change the delegate"
        )
    ix = update_delegate_ix(chain, delegate)
    fee = await sender.builder.priority_fee([chain.user_pubkey])

    async def sign() -> SignedTx:
        return await sender.builder.build([ix], owner, fee)

    async def probe() -> bool | None:
        try:
            return (await delegate_status(chain)).delegate == str(delegate)
        except (RpcError, DelegationError):
            return None

    sub = sender.submit(await sign(), kind="delegate", market="-", refs=[str(delegate)], resign=sign,
                        probe=probe, address=chain.user_pubkey)
    return await sender.wait(sub)


async def revoke_delegate(chain: DriftChain, sender: TxSender, owner: Signer) -> Submission:
    return await set_delegate(chain, sender, owner, NO_DELEGATE)
