"""Security primitives of the base layer: keys, signing and encryption; no web, Faust or Kafka.

API keys and their scopes, link-token signing and encryption, consent receipts and
crypto-shredding: settings check their values with these, so they import nothing above base.
"""
