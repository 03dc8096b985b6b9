"""Staff users, API tokens and browser sessions (storage only; agent.accounts.auth has the rules).

The store keeps password hashes (argon2id strings made by ``agent.accounts.auth``) and, for tokens
and sessions, a public ``selector`` plus the SHA-256 of the secret verifier. ``User`` never
carries the hash; ``UserRepo.password_hash`` is the one way to read it.
"""

from __future__ import annotations

import sqlite3

from agent.errors import AlreadyExists, NotFound, UserNotFound
from agent.models import ApiToken, Role, User, WebSession
from agent.store._base import Repo

__all__ = ["SessionRepo", "TokenRepo", "UserRepo"]


def _user(row: sqlite3.Row) -> User:
    return User(id=row["id"], name=row["name"], role=Role(row["role"]),
                disabled=bool(row["disabled"]), created_at=row["created_at"],
                updated_at=row["updated_at"], password_changed_at=row["password_changed_at"])


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(id=row["id"], user_id=row["user_id"], selector=row["selector"],
                    label=row["label"], created_at=row["created_at"],
                    last_used_at=row["last_used_at"], expires_at=row["expires_at"])


def _session(row: sqlite3.Row) -> WebSession:
    return WebSession(id=row["id"], user_id=row["user_id"], selector=row["selector"],
                      csrf_token=row["csrf_token"], created_at=row["created_at"],
                      last_seen_at=row["last_seen_at"], expires_at=row["expires_at"])


class UserRepo(Repo):
    """Staff accounts; names are unique case-insensitively."""

    def create(self, *, name: str, role: Role, pwhash: str) -> User:
        """Insert a user; raise AlreadyExists if the name is taken (any case)."""
        now = self._clock()
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists(name, kind="user")
            cursor = conn.execute(
                "INSERT INTO users (name, role, pwhash, created_at, updated_at,"
                " password_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, str(Role(role)), pwhash, now, now, now))
            return self._get(conn, "id", cursor.lastrowid)

    def _get(self, conn: sqlite3.Connection, column: str, value: object) -> User:
        row = conn.execute(f"SELECT * FROM users WHERE {column} = ?", (value,)).fetchone()  # noqa: S608
        if row is None:
            raise UserNotFound(str(value))
        return _user(row)

    def get(self, *, name: str) -> User:
        """Return a user by name (case-insensitive)."""
        with self._db.read() as conn:
            return self._get(conn, "name", name)

    def get_by_id(self, *, user_id: int) -> User:
        """Return a user by id."""
        with self._db.read() as conn:
            return self._get(conn, "id", user_id)

    def password_hash(self, *, name: str) -> tuple[User, str]:
        """Return the user and the stored password hash."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UserNotFound(name)
        return _user(row), str(row["pwhash"])

    def set_password_hash(self, *, user_id: int, pwhash: str) -> User:
        """Replace a user's password hash."""
        now = self._clock()
        return self._update(user_id, "pwhash = ?, password_changed_at = ?", (pwhash, now))

    def set_role(self, *, user_id: int, role: Role) -> User:
        """Change a user's role."""
        return self._update(user_id, "role = ?", (str(Role(role)),))

    def set_disabled(self, *, user_id: int, disabled: bool) -> User:
        """Disable or re-enable a user."""
        return self._update(user_id, "disabled = ?", (int(disabled),))

    def _update(self, user_id: int, sets: str, params: tuple[object, ...]) -> User:
        with self._db.write() as conn:
            cursor = conn.execute(f"UPDATE users SET {sets}, updated_at = ? WHERE id = ?",  # noqa: S608
                                  (*params, self._clock(), user_id))
            if cursor.rowcount == 0:
                raise UserNotFound(str(user_id))
            return self._get(conn, "id", user_id)

    def remove(self, *, user_id: int) -> None:
        """Delete a user with their tokens and sessions."""
        with self._db.write() as conn:
            if conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 0:
                raise UserNotFound(str(user_id))

    def all(self) -> list[User]:
        """Return every user by name."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def count_active_admins(self) -> int:
        """Count enabled admins (the last one must not be removed or demoted)."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM users WHERE role = 'admin'"
                                    " AND disabled = 0").fetchone()[0])


class TokenRepo(Repo):
    """Bearer tokens: selector + verifier hash."""

    def create(self, *, user_id: int, selector: str, verifier_hash: bytes, label: str = "",
               expires_at: float | None = None) -> ApiToken:
        """Store a new token's hash."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO api_tokens (selector, verifier_hash, user_id, label, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (selector, verifier_hash, user_id, label, self._clock(), expires_at))
            row = conn.execute("SELECT * FROM api_tokens WHERE id = ?",
                               (cursor.lastrowid,)).fetchone()
        return _token(row)

    def lookup(self, *, selector: str) -> tuple[ApiToken, bytes]:
        """Return a token and its verifier hash by selector; NotFound if unknown."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM api_tokens WHERE selector = ?",
                               (selector,)).fetchone()
        if row is None:
            raise NotFound("token", kind="token")
        return _token(row), bytes(row["verifier_hash"])

    def touch(self, *, token_id: int) -> None:
        """Record a use (callers throttle this to spare writes)."""
        with self._db.write(durable=False) as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                         (self._clock(), token_id))

    def revoke(self, *, token_id: int) -> None:
        """Delete a token."""
        with self._db.write() as conn:
            if conn.execute("DELETE FROM api_tokens WHERE id = ?", (token_id,)).rowcount == 0:
                raise NotFound(str(token_id), kind="token")

    def remove_for_user(self, *, user_id: int) -> int:
        """Delete every token of a user (password change); return the count."""
        with self._db.write() as conn:
            return conn.execute("DELETE FROM api_tokens WHERE user_id = ?",
                                (user_id,)).rowcount

    def for_user(self, *, user_id: int) -> list[ApiToken]:
        """Return a user's tokens, newest first."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id DESC",
                                (user_id,)).fetchall()
        return [_token(r) for r in rows]

    def prune_expired(self) -> int:
        """Delete expired tokens; return the count."""
        with self._db.write(durable=False) as conn:
            return conn.execute("DELETE FROM api_tokens WHERE expires_at IS NOT NULL"
                                " AND expires_at <= ?", (self._clock(),)).rowcount


class SessionRepo(Repo):
    """Browser sessions: selector + verifier hash, CSRF token, sliding expiry."""

    def create(self, *, user_id: int, selector: str, verifier_hash: bytes, csrf_token: str,
               expires_at: float) -> WebSession:
        """Store a new session."""
        now = self._clock()
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO web_sessions (selector, verifier_hash, user_id, csrf_token,"
                " created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (selector, verifier_hash, user_id, csrf_token, now, now, expires_at))
            row = conn.execute("SELECT * FROM web_sessions WHERE id = ?",
                               (cursor.lastrowid,)).fetchone()
        return _session(row)

    def lookup(self, *, selector: str) -> tuple[WebSession, bytes]:
        """Return a session and its verifier hash by selector; NotFound if unknown."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM web_sessions WHERE selector = ?",
                               (selector,)).fetchone()
        if row is None:
            raise NotFound("session", kind="session")
        return _session(row), bytes(row["verifier_hash"])

    def extend(self, *, session_id: int, expires_at: float) -> None:
        """Record activity and push the expiry (callers throttle this)."""
        with self._db.write(durable=False) as conn:
            conn.execute("UPDATE web_sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?",
                         (self._clock(), expires_at, session_id))

    def remove(self, *, session_id: int) -> None:
        """End a session (logout); unknown ids are ignored."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM web_sessions WHERE id = ?", (session_id,))

    def remove_for_user(self, *, user_id: int) -> int:
        """End every session of a user (password change, disable); return the count."""
        with self._db.write() as conn:
            return conn.execute("DELETE FROM web_sessions WHERE user_id = ?",
                                (user_id,)).rowcount

    def prune_expired(self) -> int:
        """Delete expired sessions; return the count."""
        with self._db.write(durable=False) as conn:
            return conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?",
                                (self._clock(),)).rowcount
