"""What the Kling video models (the models that consume elements, contract §10) share: their request fields
(fields.py), parsing with every problem by dotted path (parse.py), cross-field rules (rules.py), element rules at
submit (elements.py), per-second prices (pricing.py), their OpenAPI request schema (schema.py) and the ModelSpec
they all build (spec.py). Each model's own folder (catalog/kling_<series>_<kind>/) says its fields and limits.
"""
