"""Everything that speaks to the outside world about bare metal: DBC protocol, IPMI, emulator."""

__all__: list[str] = []
