"""The object store daemon ("the metadata pool"): durable objects, omap, fencing."""
