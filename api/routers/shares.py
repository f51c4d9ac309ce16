"""Share links of a user, written once (`add_share_routes`) and mounted twice, as the read routes are: under `/me`
the caller creates, lists and revokes their own; under `/users/{user_id}` an admin key lists any user's. Creating and
revoking are the user's acts, under `/me` only. What a link shows: `api/routers/shared.py`."""

import uuid
from enum import Enum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from api import audit
from api.deps import DbDep
from api.errors import BAD_REQUEST, KEYED_ROUTE_RESPONSES, NO_SUCH_SHARE, NO_SUCH_USER, NOT_ADMIN, UNPROCESSABLE
from api.queries import shares as queries
from api.ranges import MAX_DAYS, range_problem
from api.schemas.shares import Share, ShareCreated, ShareIn
from api.subject import ANY_USER_DATA, OWN_DATA, SubjectDependency


def add_share_routes(router: APIRouter, prefix: str, subject: SubjectDependency, own: bool) -> None:
    """Add the share routes under ``prefix`` for the user ``subject`` (a dependency) resolves; ``own``: the caller's
    own shares, which adds creating and revoking them."""
    responses: dict[int | str, dict[str, Any]] = {**KEYED_ROUTE_RESPONSES, 404: NO_SUCH_USER, 422: UNPROCESSABLE}
    if not own:
        responses[403] = NOT_ADMIN
    tags: list[str | Enum] = ["shares" if own else "admin reads"]
    SubjectDep = Annotated[str, Depends(subject)]  # noqa: N806  (a type alias local to the factory)
    whose = "the caller's" if own else "the user's"

    @router.get(
        prefix + "/shares",
        tags=tags,
        responses=responses,
        response_model=list[Share],
        summary=f"{whose.capitalize()} share links",
    )
    def list_shares(user_id: SubjectDep, conn: DbDep) -> list[Share]:
        """Every share link, active, expired and revoked, newest first; never their codes."""
        rows = queries.user_shares(conn, user_id)
        audit.note_records(len(rows))
        return [Share(**row) for row in rows]

    if not own:
        return

    @router.post(
        prefix + "/shares",
        tags=tags,
        status_code=status.HTTP_201_CREATED,
        responses={**responses, 400: BAD_REQUEST},
        response_model=ShareCreated,
        summary="Create a share link to some of the caller's daily data",
        description="Whoever holds the link reads, without a key, the daily aggregates of the chosen types over the "
        "chosen dates until it expires or is revoked. The answer holds the link's code: the only time it is shown. "
        f"An unknown type, an end before the start or a range over {MAX_DAYS['day']} days (both ends included): 422.",
    )
    def create_share(body: ShareIn, user_id: SubjectDep, conn: DbDep, request: Request) -> ShareCreated:
        problem = range_problem(body.start, body.end, MAX_DAYS["day"], "a share")
        if problem is not None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
        created = queries.create_share(
            conn, user_id, body.recipient, body.types, body.start, body.end, body.expires_in_days
        )
        if created is None:  # the key's user was deleted since it authenticated
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")
        row, code = created
        return ShareCreated(
            **row,
            code=code,
            url=f"{request.app.url_path_for('dashboard_page')}#/shared/{quote(code, safe='')}",
            api_url=str(request.app.url_path_for("get_shared", code=code)),
        )

    @router.delete(
        prefix + "/shares/{share_id}",
        tags=tags,
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses={**responses, 404: NO_SUCH_SHARE},
        summary="Revoke one of the caller's share links",
    )
    def delete_share(share_id: uuid.UUID, user_id: SubjectDep, conn: DbDep) -> None:
        """The link stops working at once. Idempotent: revoking again answers 204 and changes nothing."""
        if not queries.revoke_share(conn, user_id, share_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no share {share_id} of this user")


router = APIRouter()
add_share_routes(router, "/me", OWN_DATA, own=True)
add_share_routes(router, "/users/{user_id}", ANY_USER_DATA, own=False)
