"""WhatsApp Flows: completed flows mapped onto new tickets, and the encrypted data-exchange endpoint.

    templates.py  `{field}` templates: checked at config time, filled from a flow's answers
    mapping.py    an `nfm_reply` → the ticket fields its flow definition asks for (pure)
    screens.py    a decrypted data-exchange request → the answer configured for it (pure)
    crypto.py     Meta's envelope: RSA-OAEP key unwrap, AES-128-GCM both ways (pure)
    keys.py       the PEM private key file, read once
    endpoint.py   the HTTP handler: signature, decryption, answer

Nothing here does I/O at import time.
"""
