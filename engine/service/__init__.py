"""The CDS Hooks 2.0 service: discovery, hooks answered with cards, feedback, the plain
evaluate endpoint, JSON Schemas and readiness, behind optional JWT authentication.

An edge package: it uses the core (engine.pipeline, the pack) and the core never imports it.
"""
