"""A handler whose import fails, as a missing dependency would."""

import a_dependency_that_is_not_installed  # noqa: F401


def handler(event, context):  # type: ignore[no-untyped-def]
    """Never reached."""
    return {"statusCode": 200}
