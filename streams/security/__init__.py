"""Security primitives of the base layer: keys, signing and encryption; no web, Faust or Kafka."""
