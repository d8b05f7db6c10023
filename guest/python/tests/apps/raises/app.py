def handler(event, context):
    raise RuntimeError("raised on purpose: " + str(event.get("n")))
