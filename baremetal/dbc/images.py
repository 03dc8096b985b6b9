"""Image-center and VM-LAN endpoints of the DBC HTTP API.

Paths follow the wiki's http-api.md and rest_api_service.cpp (``rest_images``
:4315-4357, ``rest_lan`` :10866-10896). Answers are returned unmodelled in an
``ApiReply`` after the envelope check.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from baremetal.dbc.auth import Auth
from baremetal.dbc.http import ClientCore, check_path_segment, request_body
from baremetal.dbc.models import ApiReply, check_wire_text
from baremetal.errors import InvalidInput

__all__ = ["ImageEndpoints"]

# VxlanManager::CreateNetworkServer: "6 to 10 letters or numbers" (VxlanManager.cpp:196-198).
_NETWORK_NAME = re.compile(r"[A-Za-z0-9]{6,10}")


class ImageEndpoints(ClientCore):
    """Image center (list, upload, download, progress, stop, delete) and VM LAN calls."""

    def _image_call(
        self, endpoint: str, action: str, node_id: str | None, additional: dict[str, Any],
        auth: Auth | None, timeout_s: float | None,
    ) -> ApiReply:
        peers = [] if node_id is None else [check_path_segment("node_id", node_id)]
        for key, value in additional.items():
            check_wire_text(key, value)
        path = f"/images/{action}" if action else "/images"
        body = request_body(peers, additional, auth)
        return ApiReply(endpoint, self._call(endpoint, path, body, timeout_s))

    def list_image_servers(self, *, timeout_s: float | None = None) -> ApiReply:
        """List the image-center ids known to the client node: ``images/servers``."""
        return self._image_call("list_image_servers", "servers", None, {}, None, timeout_s)

    def list_images(
        self, *, image_server: str | None = None, node_id: str | None = None,
        auth: Auth | None = None, timeout_s: float | None = None,
    ) -> ApiReply:
        """List images of an image center, or of a GPU node (for a renter with auth)."""
        if node_id is None and image_server is None:
            raise InvalidInput("image_server is required when no node_id is given")
        additional = {} if image_server is None else {"image_server": image_server}
        return self._image_call("list_images", "", node_id, additional, auth, timeout_s)

    def upload_image(
        self, image_filename: str, image_server: str, *, node_id: str | None = None,
        auth: Auth | None = None, timeout_s: float | None = None,
    ) -> ApiReply:
        """Upload an image from a GPU node (or the client node) to an image center."""
        additional = {"image_filename": image_filename, "image_server": image_server}
        return self._image_call("upload_image", "upload", node_id, additional, auth, timeout_s)

    def download_image(
        self, node_id: str, image_filename: str, image_server: str, local_dir: str, auth: Auth,
        *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Download an image from an image center to ``local_dir`` on a GPU node."""
        additional = {"image_server": image_server, "image_filename": image_filename,
                      "local_dir": local_dir}
        return self._image_call("download_image", "download", node_id, additional, auth,
                                timeout_s)

    def _image_file_call(
        self, endpoint: str, action: str, node_id: str, image_filename: str, auth: Auth,
        timeout_s: float | None,
    ) -> ApiReply:
        additional = {"image_filename": image_filename}
        return self._image_call(endpoint, action, node_id, additional, auth, timeout_s)

    def image_download_progress(
        self, node_id: str, image_filename: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Report a download's progress: ``images/downloadprogress``."""
        return self._image_file_call("image_download_progress", "downloadprogress", node_id,
                                     image_filename, auth, timeout_s)

    def image_upload_progress(
        self, node_id: str, image_filename: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Report an upload's progress: ``images/uploadprogress``."""
        return self._image_file_call("image_upload_progress", "uploadprogress", node_id,
                                     image_filename, auth, timeout_s)

    def stop_image_download(
        self, node_id: str, image_filename: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Stop a download: ``images/download_stop``."""
        return self._image_file_call("stop_image_download", "download_stop", node_id,
                                     image_filename, auth, timeout_s)

    def stop_image_upload(
        self, node_id: str, image_filename: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Stop an upload: ``images/upload_stop``."""
        return self._image_file_call("stop_image_upload", "upload_stop", node_id,
                                     image_filename, auth, timeout_s)

    def delete_image(
        self, node_id: str, image_filename: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Delete an image file on a GPU node: ``images/delete``."""
        return self._image_file_call("delete_image", "delete", node_id, image_filename, auth,
                                     timeout_s)

    def create_lan(
        self, node_id: str, network_name: str, ip_cidr: str, auth: Auth, *,
        timeout_s: float | None = None,
    ) -> ApiReply:
        """Create a VM network named ``network_name`` on ``ip_cidr``: ``lan/create``."""
        if not isinstance(network_name, str) or not _NETWORK_NAME.fullmatch(network_name):
            raise InvalidInput("network_name must be 6 to 10 ASCII letters or digits")
        try:
            # The node passes ip_cidr to shell scripts; only a real IPv4 CIDR is safe.
            ipaddress.IPv4Network(ip_cidr, strict=False)
        except (TypeError, ValueError):
            raise InvalidInput("ip_cidr must be an IPv4 network like 192.168.66.0/24") from None
        check_path_segment("node_id", node_id)
        body = request_body([node_id], {"network_name": network_name, "ip_cidr": ip_cidr}, auth)
        return ApiReply("create_lan", self._call("create_lan", "/lan/create", body, timeout_s))

    def delete_lan(
        self, node_id: str, network_name: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> ApiReply:
        """Delete a VM network: ``lan/delete/<network_name>``."""
        check_path_segment("node_id", node_id)
        path = f"/lan/delete/{check_path_segment('network_name', network_name)}"
        body = request_body([node_id], {}, auth)
        return ApiReply("delete_lan", self._call("delete_lan", path, body, timeout_s))
