"""HTTP ingress: authenticate, validate, authorize, record an operation, answer."""
