"""The read API's queries: small functions, one per question a route asks, over the precomputed tables (marts,
core, app). Pure reads apart from acknowledging an insight. Routers call these and hold no SQL themselves."""
