"""What a document holds beyond the solution itself: one small value passed through every format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    key: bool = False             # the answer key (the TA's version); students' documents leave it out
    torch: bool | None = None     # the closing PyTorch check code; None: on in slides (as the 2022 slides), off elsewhere

    def torch_in(self, fmt: str) -> bool:
        return self.torch if self.torch is not None else fmt == "beamer"
