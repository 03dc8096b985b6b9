"""Staff users (admin only): ``/api/v1/users``. Every change is an audit event."""

from __future__ import annotations

from fastapi import APIRouter, Response

from agent.api.deps import Admin, AgentDep
from agent.api.schemas import ErrorOut, UserIn, UserOut, UserPatchIn, user_out
from agent.models import Role
from agent.secrets import Secret

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["users"],
                   responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})


@router.get("", response_model=list[UserOut])
def list_users(_admin: Admin, agent: AgentDep) -> list[UserOut]:
    """List every staff user by name."""
    return [user_out(u) for u in agent.auth.list_users()]


@router.post("", response_model=UserOut, status_code=201,
             responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def create_user(body: UserIn, admin: Admin, agent: AgentDep) -> UserOut:
    """Create a user with a role (viewer, operator or admin)."""
    user = agent.auth.create_user(name=body.name, role=Role(body.role),
                                  password=Secret(body.password.get_secret_value()),
                                  actor=admin.user.name)
    return user_out(user)


@router.patch("/{name}", response_model=UserOut,
              responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def update_user(name: str, body: UserPatchIn, admin: Admin, agent: AgentDep) -> UserOut:
    """Change a user's role, password or disabled flag (the last admin stays an admin).

    A new password ends the user's sessions and revokes their bearer tokens.
    """
    actor = admin.user.name
    user = agent.user(name)
    if body.password is not None:
        user = agent.auth.change_password(
            name=user.name, new_password=Secret(body.password.get_secret_value()),
            actor=actor).user
    if body.role is not None and body.role != user.role:
        user = agent.auth.set_role(name=user.name, role=Role(body.role), actor=actor)
    if body.disabled is not None and body.disabled != user.disabled:
        user = agent.auth.set_disabled(name=user.name, disabled=body.disabled, actor=actor)
    return user_out(user)


@router.delete("/{name}", status_code=204, response_class=Response,
               responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def remove_user(name: str, admin: Admin, agent: AgentDep) -> Response:
    """Delete a user with their tokens and sessions."""
    agent.auth.remove_user(name=name, actor=admin.user.name)
    return Response(status_code=204)
