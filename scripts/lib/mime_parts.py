#!/usr/bin/python3
"""Reads a message (.eml) with Python's own e-mail parser and prints it as JSON, for
the tests to check what arrived: decoded headers, and each leaf part's content type,
file name and bytes (base64)."""
import base64, email, email.policy, json, sys

with open(sys.argv[1], "rb") as f:
    message = email.message_from_binary_file(f, policy=email.policy.default)
headers = {k: str(v) for k, v in message.items()}
parts = []
for part in message.walk():
    if part.is_multipart():
        continue
    parts.append({
        "content_type": part.get_content_type(),
        "file_name": part.get_filename(),
        "disposition": part.get_content_disposition(),
        "bytes": base64.b64encode(part.get_payload(decode=True) or b"").decode(),
    })
print(json.dumps({"headers": headers, "parts": parts, "defects": [str(d) for d in message.defects]}))
