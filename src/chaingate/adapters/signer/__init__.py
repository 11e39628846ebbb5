"""The gateway's side of the signer boundary: the `Signer` port over an authenticated Unix
socket (client.py), and the wire format and request authentication both sides share."""
