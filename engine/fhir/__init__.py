"""FHIR R4 onto the scenario: a patient's resources in, a scenario and what could not be mapped out.

An edge package: it uses the core and the core never imports it.
"""
