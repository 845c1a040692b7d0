"""The telephony carrier's side of virtual numbers, simulated and named so.

A carrier that routes per call (Twilio Proxy's intercept callback, Huawei's 呼叫事件通知 style) asks
TripGuard, at each ring of a virtual number, whom to bridge the call to: `POST /api/v1/telephony/route`
with its API key (scope `telephony.route`). `SimulatedCarrier` plays that carrier for development, the
demo and tests: it "rings" a number, asks the route endpoint, and says what it would do, dialling
nobody. A real carrier needs no code here, only its key and that endpoint; a carrier that wants bindings
pushed to it (Alibaba's `BindAxb`) would need an adapter sending them through the outbox, not built yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx2 as httpx

from tripguard.vault.masking import mask_phone


@dataclass(frozen=True)
class Call:
    number: str
    caller: str
    action: str  # bridge | refuse
    to: str | None
    reason: str | None

    def describe(self) -> str:
        """What the simulated carrier would do, with the real number masked."""
        if self.action == "bridge" and self.to:
            return f"simulated carrier: {self.number} bridges {mask_phone(self.caller)} to {mask_phone(self.to)}"
        return f"simulated carrier: {self.number} refuses {mask_phone(self.caller)} ({self.reason})"


@dataclass
class SimulatedCarrier:
    """Stands in for the carrier (it dials nobody): rings a virtual number through TripGuard's routing."""

    client: httpx.Client  # pointed at TripGuard, carrying the carrier's API key
    name: str = "simulated-carrier"

    def ring(self, *, number: str, caller: str) -> Call:
        response = self.client.post("/api/v1/telephony/route", json={"number": number, "caller": caller})
        response.raise_for_status()
        answer = response.json()
        return Call(number, caller, answer["action"], answer.get("to"), answer.get("reason"))
