"""A module without the configured handler function."""


def other(event, context):  # type: ignore[no-untyped-def]
    """Not the configured function."""
    return {"statusCode": 200}
