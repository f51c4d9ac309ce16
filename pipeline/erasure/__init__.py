"""Erasing a user from every schema, from Dagster, and from the cross-user results they took part in
(``erase.erase_user``)."""
