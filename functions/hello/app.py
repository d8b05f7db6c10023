"""hello: no I/O at all — the smallest possible function (cold/warm start cost)."""


def handler(event, context):
    name = (event or {}).get("name", "world")
    return {"greeting": f"Hello, {name}!", "request_id": context.aws_request_id,
            "function": context.function_name, "remaining_ms": context.get_remaining_time_in_millis()}
