"""Login, logout, who am I, bearer tokens, one's own password: ``/api/v1/auth/*``.

``POST /auth/login`` (rate limited per user name and per source IP: 429 + Retry-After)
sets the ``bm_session`` cookie (HttpOnly, SameSite=Strict, Secure over HTTPS or when
``[api] secure_cookies`` or ``tls_cert``) and answers the session's CSRF token, which the
browser sends back as ``X-CSRF-Token`` on every state-changing request. ``POST
/auth/tokens`` proves a password once (same rate limit) and answers a bearer token for the
CLI and scripts; the token is shown only in that answer; its life is capped by the user's
role (``[auth] token_max_ttl_<role>_s``, 422 ``token_ttl_too_long`` over it). ``POST
/auth/password`` checks the old password (rate limited per user and source IP like a
login), ends every session and revokes every bearer token of the user, and answers the
counts; a browser caller gets a fresh session (new cookie and CSRF token) in the same
answer, a token caller logs in again.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response

from agent.api.deps import MAX_ID, SESSION_COOKIE, AgentDep, Viewer, client_ip
from agent.api.schemas import (
    ErrorOut,
    LoginIn,
    LoginOut,
    PasswordChangedOut,
    PasswordIn,
    TokenIn,
    TokenInfoOut,
    TokenOut,
    user_out,
)
from agent.errors import NotFound
from agent.models import ApiToken, Role, User, WebSession
from agent.secrets import Secret

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"],
                   responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}})


def _secure(request: Request, agent: AgentDep) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").lower() == "https"
    return agent.settings.api.always_secure_cookies or request.url.scheme == "https" or forwarded


def _token_info(info: ApiToken) -> TokenInfoOut:
    return TokenInfoOut(id=info.id, label=info.label, created_at=info.created_at,
                        last_used_at=info.last_used_at, expires_at=info.expires_at)


def _open_session(user: User, request: Request, response: Response,
                  agent: AgentDep) -> WebSession:
    issued = agent.auth.open_session(user=user)
    response.set_cookie(SESSION_COOKIE, issued.cookie.reveal(), path="/", httponly=True,
                        samesite="strict", secure=_secure(request, agent),
                        max_age=agent.settings.auth.session_max_s)
    return issued.session


@router.post("/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, response: Response, agent: AgentDep) -> LoginOut:
    """Check a password and open a browser session (cookie + CSRF token)."""
    user = agent.auth.login(name=body.name, password=Secret(body.password.get_secret_value()),
                            source_ip=client_ip(request))
    session = _open_session(user, request, response, agent)
    return LoginOut(user=user_out(user), csrf_token=session.csrf_token,
                    expires_at=session.expires_at)


@router.post("/logout", status_code=204, response_class=Response)
def logout(request: Request, principal: Viewer, agent: AgentDep) -> Response:
    """End the browser session (bearer tokens are revoked with DELETE /auth/tokens/{id})."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.session is not None and cookie:
        agent.auth.close_session(cookie)
    answer = Response(status_code=204)
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return answer


@router.get("/me", response_model=LoginOut)
def me(principal: Viewer) -> LoginOut:
    """Return the caller (and, for a browser session, its CSRF token)."""
    session = principal.session
    return LoginOut(user=user_out(principal.user),
                    csrf_token=session.csrf_token if session else None,
                    expires_at=session.expires_at if session else None)


@router.post("/tokens", response_model=TokenOut, status_code=201)
def issue_token(body: TokenIn, request: Request, agent: AgentDep) -> TokenOut:
    """Prove a password and get a bearer token (shown in this answer only)."""
    user = agent.auth.login(name=body.name, password=Secret(body.password.get_secret_value()),
                            source_ip=client_ip(request))
    issued = agent.auth.issue_token(user=user, label=body.label, ttl_s=body.ttl_s)
    return TokenOut(token=issued.token.reveal(), **_token_info(issued.info).model_dump())


@router.get("/tokens", response_model=list[TokenInfoOut])
def list_tokens(principal: Viewer, agent: AgentDep) -> list[TokenInfoOut]:
    """List the caller's own tokens (never the tokens themselves)."""
    return [_token_info(t) for t in agent.tokens_of(principal.user.id)]


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def revoke_token(principal: Viewer, agent: AgentDep,
                 token_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    """Revoke one of the caller's tokens (an admin may revoke anyone's)."""
    own = {t.id for t in agent.tokens_of(principal.user.id)}
    if token_id not in own and not principal.user.role.allows(Role.ADMIN):
        raise NotFound(str(token_id), kind="token")
    agent.auth.revoke_token(token_id=token_id, actor=principal.user.name)
    return Response(status_code=204)


@router.post("/password", response_model=PasswordChangedOut)
def change_password(body: PasswordIn, principal: Viewer, request: Request, response: Response,
                    agent: AgentDep) -> PasswordChangedOut:
    """Change one's own password: end every session, revoke every token of the user.

    A browser session caller gets a fresh session (cookie and CSRF token in this answer);
    a bearer-token caller's token is revoked with the others: log in again.
    """
    changed = agent.auth.change_password(
        name=principal.user.name, new_password=Secret(body.new_password.get_secret_value()),
        old_password=Secret(body.old_password.get_secret_value()), actor=principal.user.name,
        source_ip=client_ip(request))
    answer = PasswordChangedOut(revoked_sessions=changed.revoked_sessions,
                                revoked_tokens=changed.revoked_tokens)
    if principal.session is None:
        return answer
    session = _open_session(changed.user, request, response, agent)
    return answer.model_copy(update={"csrf_token": session.csrf_token,
                                     "expires_at": session.expires_at})
