from ..v1_0.calls import Item, Items

__all__ = ["Item", "Items"]
