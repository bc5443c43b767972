"""The evaluation protocols, one ``Protocol`` object each, and the registry ``maskscope evaluate
--protocols`` chooses from.

The registry's order is the order of the columns in ``metrics.json`` and of the sections in
``metrics.md``. A protocol of one's own is a ``Protocol`` subclass: pass an instance in
``EvalConfig.protocols``, or ``register`` it to make its name known to the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import ConfigError
from .base import BOXES, MODEL, OBJECT_MASKS, Protocol, Rows, Split
from .model_scores import Area, DeletionInsertion, Drop, Saliency, Suppression
from .representativeness import CrossDrop, Representativeness
from .truth import Background, Localisation, Pointing

PROTOCOLS: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    """Add ``protocol`` to the registry under its name (ConfigError if the name is taken)."""
    if not protocol.name or protocol.name in PROTOCOLS:
        raise ConfigError(f"a protocol needs a name of its own, got {protocol.name!r}")
    PROTOCOLS[protocol.name] = protocol
    return protocol


for _protocol in (Saliency(), Drop(), Area(), DeletionInsertion(), Localisation(), Pointing(), Suppression(),
                  Background(), Representativeness(), CrossDrop()):
    register(_protocol)


def resolve(chosen: Sequence[str | Protocol] | None) -> list[Protocol]:
    """The protocols of ``chosen`` (names or objects; None: every registered one), in the registry's
    order then the unregistered ones; ConfigError naming the known ones for an unknown name."""
    if chosen is None:
        return list(PROTOCOLS.values())
    names, own = [], []
    for item in chosen:
        if isinstance(item, Protocol):
            if PROTOCOLS.get(item.name) is item:
                names.append(item.name)
            elif item not in own:
                own.append(item)
        elif item in PROTOCOLS:
            names.append(item)
        else:
            raise ConfigError(f"unknown protocol {item!r}; known: {', '.join(PROTOCOLS)}")
    if not names and not own:
        raise ConfigError("no protocols given")
    return [p for n, p in PROTOCOLS.items() if n in names] + own


def parse_protocols(text: str) -> list[Protocol]:
    """``"localisation,saliency"`` → those protocols (ConfigError for an unknown name)."""
    return resolve([name.strip() for name in text.split(",") if name.strip()])


__all__ = ["BOXES", "MODEL", "OBJECT_MASKS", "PROTOCOLS", "Protocol", "Rows", "Split", "parse_protocols",
           "register", "resolve"]
