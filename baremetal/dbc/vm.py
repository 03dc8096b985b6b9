"""GPU-node VM endpoints of the DBC HTTP API: tasks, disks and snapshots.

Paths and bodies follow the wiki's http-api.md and the client handlers in
rest_api_service.cpp (``rest_task`` :730-780, ``rest_disk`` :6715-6740,
``rest_snapshot`` :9369-9391). The node relays each answer from the GPU node verbatim;
its ``message`` is returned unmodelled in an ``ApiReply`` after the envelope check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baremetal.dbc.auth import Auth
from baremetal.dbc.http import ClientCore, check_path_segment, request_body
from baremetal.dbc.models import ApiReply, check_wire_text
from baremetal.errors import InvalidInput

__all__ = ["LOG_DIRECTIONS", "MAX_LOG_LINES", "VmEndpoints"]

LOG_DIRECTIONS = ("head", "tail")
# MAX_NUMBER_OF_LINES (common/def.h:20); the client clamps larger values to 99.
MAX_LOG_LINES = 100
# "/tasks/start" (one segment) creates a VM, so "start" cannot be a task id to query.
_TASK_ROUTES = frozenset({"start"})


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{name} must be a positive integer")
    return value


class VmEndpoints(ClientCore):
    """VM (task), disk and snapshot endpoints; every call needs renter auth.

    Reference: docs/protocol.md §4.3.
    """

    def _vm_call(
        self, endpoint: str, path: str, node_id: str, additional: Mapping[str, Any],
        auth: Auth | None, timeout_s: float | None,
    ) -> ApiReply:
        check_path_segment("node_id", node_id)
        body = request_body([node_id], dict(additional), auth)
        return ApiReply(endpoint, self._call(endpoint, path, body, timeout_s))

    def _task_path(self, action: str, task_id: str) -> str:
        return f"/tasks/{action}/{check_path_segment('task_id', task_id)}"

    def create_task(
        self, node_id: str, spec: Mapping[str, Any], auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Create a VM from ``spec`` (image_name, cpu_cores, mem_size, ...): ``tasks/start``."""
        return self._vm_call("create_task", "/tasks/start", node_id, spec, auth, timeout_s)

    def get_task(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Return one VM's details: ``tasks/<task_id>``."""
        check_path_segment("task_id", task_id)
        if task_id in _TASK_ROUTES:
            raise InvalidInput(f"task_id {task_id!r} would be routed as another endpoint")
        return self._vm_call("get_task", f"/tasks/{task_id}", node_id, {}, auth, timeout_s)

    def list_tasks(self, node_id: str, auth: Auth, *, timeout_s: float | None = None) -> ApiReply:
        """List the VMs on a GPU node: ``tasks``."""
        return self._vm_call("list_tasks", "/tasks", node_id, {}, auth, timeout_s)

    def _task_action(
        self, action: str, node_id: str, task_id: str, auth: Auth, timeout_s: float | None,
        query: str = "",
    ) -> ApiReply:
        path = self._task_path(action, task_id) + query
        return self._vm_call(f"{action}_task", path, node_id, {}, auth, timeout_s)

    def shutdown_task(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Shut a VM down gracefully: ``tasks/shutdown/<task_id>``."""
        return self._task_action("shutdown", node_id, task_id, auth, timeout_s)

    def poweroff_task(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Cut a VM's power: ``tasks/poweroff/<task_id>``."""
        return self._task_action("poweroff", node_id, task_id, auth, timeout_s)

    def start_task(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Start (or wake) a VM: ``tasks/start/<task_id>``."""
        return self._task_action("start", node_id, task_id, auth, timeout_s)

    def delete_task(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Delete a VM: ``tasks/delete/<task_id>``."""
        return self._task_action("delete", node_id, task_id, auth, timeout_s)

    def restart_task(
        self, node_id: str, task_id: str, auth: Auth, *, force: bool = False,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Restart a VM; ``force`` adds ``?force_reboot=true`` (rest_api_service.cpp:2551)."""
        query = "?force_reboot=true" if force else ""
        return self._task_action("restart", node_id, task_id, auth, timeout_s, query)

    def task_logs(
        self, node_id: str, task_id: str, auth: Auth, *, flag: str = "tail",
        line_num: int = MAX_LOG_LINES, timeout_s: float | None = None,
    ) -> ApiReply:
        """Read up to ``line_num`` log lines from the head or tail: ``tasks/logs/<id>``."""
        if flag not in LOG_DIRECTIONS:
            raise InvalidInput(f"flag must be one of {LOG_DIRECTIONS}")
        lines = _positive_int("line_num", line_num)
        if lines > MAX_LOG_LINES:
            raise InvalidInput(f"line_num must be at most {MAX_LOG_LINES}")
        query = f"?flag={flag}&line_num={lines}"
        return self._task_action("logs", node_id, task_id, auth, timeout_s, query)

    def modify_task(
        self, node_id: str, task_id: str, changes: Mapping[str, Any], auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Change a VM's ports, GPU/CPU/memory, ip or filters: ``tasks/modify/<id>``."""
        if not changes:
            raise InvalidInput("nothing to change: give at least one new_* field")
        path = self._task_path("modify", task_id)
        return self._vm_call("modify_task", path, node_id, changes, auth, timeout_s)

    def set_task_password(
        self, node_id: str, task_id: str, username: str, password: str, auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Set a running VM's login password: ``tasks/passwd/<id>``."""
        check_wire_text("username", username)
        check_wire_text("password", password)
        path = self._task_path("passwd", task_id)
        additional = {"username": username, "password": password}
        return self._vm_call("passwd_task", path, node_id, additional, auth, timeout_s)

    def list_disks(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """List a VM's disks: ``disk/list/<task_id>``."""
        path = f"/disk/list/{check_path_segment('task_id', task_id)}"
        return self._vm_call("list_disks", path, node_id, {}, auth, timeout_s)

    def resize_disk(
        self, node_id: str, task_id: str, disk: str, size_gb: int, auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Grow data disk ``disk`` (e.g. "vdb") by ``size_gb``: ``disk/resize/<task_id>``."""
        check_wire_text("disk", disk)
        additional = {"disk": disk, "size": _positive_int("size_gb", size_gb)}
        path = f"/disk/resize/{check_path_segment('task_id', task_id)}"
        return self._vm_call("resize_disk", path, node_id, additional, auth, timeout_s)

    def add_disk(
        self, node_id: str, task_id: str, size_gb: int, auth: Auth, *, mount_dir: str = "/data",
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Add a data disk of ``size_gb`` mounted at ``mount_dir``: ``disk/add/<task_id>``."""
        check_wire_text("mount_dir", mount_dir)
        additional = {"size": _positive_int("size_gb", size_gb), "mount_dir": mount_dir}
        path = f"/disk/add/{check_path_segment('task_id', task_id)}"
        return self._vm_call("add_disk", path, node_id, additional, auth, timeout_s)

    def delete_disk(
        self, node_id: str, task_id: str, disk: str, auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Remove data disk ``disk``: ``disk/delete/<task_id>``."""
        check_wire_text("disk", disk)
        path = f"/disk/delete/{check_path_segment('task_id', task_id)}"
        return self._vm_call("delete_disk", path, node_id, {"disk": disk}, auth, timeout_s)

    def list_snapshots(
        self, node_id: str, task_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """List a VM's snapshots: ``snapshot/list/<task_id>``."""
        path = f"/snapshot/list/{check_path_segment('task_id', task_id)}"
        return self._vm_call("list_snapshots", path, node_id, {}, auth, timeout_s)

    def get_snapshot(
        self, node_id: str, task_id: str, snapshot_name: str, auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Return one snapshot's details: ``snapshot/list/<task_id>/<name>``."""
        path = (f"/snapshot/list/{check_path_segment('task_id', task_id)}"
                f"/{check_path_segment('snapshot_name', snapshot_name)}")
        return self._vm_call("get_snapshot", path, node_id, {}, auth, timeout_s)

    def create_snapshot(
        self, node_id: str, task_id: str, snapshot_name: str, auth: Auth, *, desc: str = "",
        image_server: str = "", timeout_s: float | None = None,
    ) -> ApiReply:
        """Snapshot a stopped VM, optionally uploading it: ``snapshot/create/<task_id>``."""
        check_wire_text("snapshot_name", snapshot_name)
        check_wire_text("desc", desc, required=False)
        check_wire_text("image_server", image_server, required=False)
        additional = {"snapshot_name": snapshot_name, "desc": desc}
        if image_server:
            additional["image_server"] = image_server
        path = f"/snapshot/create/{check_path_segment('task_id', task_id)}"
        return self._vm_call("create_snapshot", path, node_id, additional, auth, timeout_s)

    def delete_snapshot(
        self, node_id: str, task_id: str, snapshot_name: str, auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Delete a snapshot: ``snapshot/delete/<task_id>/<name>``."""
        path = (f"/snapshot/delete/{check_path_segment('task_id', task_id)}"
                f"/{check_path_segment('snapshot_name', snapshot_name)}")
        return self._vm_call("delete_snapshot", path, node_id, {}, auth, timeout_s)
