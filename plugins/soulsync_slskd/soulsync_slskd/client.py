"""The ``soulseek`` download client: slskd searches, enqueues, the transfer list, local files."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from soulsync_core.hooks import NotConfigured, ProviderError, SettingsReader
from soulsync_core.models import Candidate, Health, Transfer
from soulsync_slskd import layout, mapping
from soulsync_slskd.search import NOT_CONNECTED, SearchRunner
from soulsync_slskd.transport import SlskdTransport

log = logging.getLogger(__name__)

DOWNLOADS = "/transfers/downloads"
BATCHES = "/transfers/downloads/batches"
# The first slskd version with the batch enqueue endpoint.
BATCH_VERSION = (0, 26)


def _user_path(username: str) -> str:
    # Usernames may hold spaces and slashes; slskd URL-decodes the route segment.
    return f"{DOWNLOADS}/{quote(username, safe='')}"


class SlskdClient:
    """Implements :class:`soulsync_core.hooks.DownloadClient` over slskd's REST API v0.

    Transfer ids are slskd's (GUIDs); ``filename`` is always the remote path exactly as the
    peer sent it (backslashes included), which is what slskd needs to enqueue it again.
    """

    name = "soulseek"

    def __init__(self, settings: SettingsReader):
        self._settings = settings
        self._transport = SlskdTransport(settings)
        self.searches = SearchRunner(self._transport, settings)
        # slskd answers 429 to overlapping enqueue requests, so this client sends one at a time.
        self._enqueue_lock = asyncio.Lock()
        # Whether slskd has the batch endpoint (None: not asked yet; see _batches_supported).
        self._batches: bool | None = None

    @property
    def configured(self) -> bool:
        """True when both the slskd URL and the API key are set."""
        return bool(self._settings.get("soulseek.slskd_url") and self._settings.get("soulseek.api_key"))

    async def start(self) -> None:
        await self._transport.start()

    async def close(self) -> None:
        await self.searches.close()
        await self._transport.close()

    async def health(self) -> Health:
        """Ask ``GET /server``; ok only when slskd is connected and logged in to Soulseek."""
        try:
            answer = await self._transport.request("GET", "/server")
        except ProviderError as exc:
            return Health(ok=False, message=str(exc))
        server = answer.body if isinstance(answer.body, dict) else {}
        state = str(server.get("state") or "unknown")
        details = {"state": state, "server": str(server.get("address") or "")}
        if self._transport.server_date:
            # Read by the health list's clock check (soulsync_core.health_checks.SERVER_DATE).
            details["server_date"] = self._transport.server_date
        if server.get("isConnected") and server.get("isLoggedIn"):
            return Health(ok=True, details=details)
        return Health(ok=False, message=f"{NOT_CONNECTED} (state: {state})", details=details)

    async def search(self, query: str) -> list[Candidate]:
        """Run one search to completion; return every unlocked file of the peers that pass the
        ``soulseek.min_peer_upload_speed`` and ``soulseek.max_peer_queue`` filters, unranked."""
        responses = await self.searches.run(query)
        return mapping.candidates(responses,
                                  min_upload_speed=self._settings.get("soulseek.min_peer_upload_speed"),
                                  max_queue=self._settings.get("soulseek.max_peer_queue"))

    async def enqueue(self, candidate: Candidate) -> Transfer:
        """Ask slskd to download ``candidate``; return the transfer as slskd first reports it.

        When slskd already has an unfinished transfer of that file from that user (it then
        lists the file as failed), that transfer is returned, so asking twice never downloads
        twice. Raises ProviderError with slskd's reason (e.g. the user is offline) otherwise.
        """
        body = [{"filename": candidate.filename, "size": candidate.size}]
        what = f"{candidate.filename} from {candidate.username}"
        async with self._enqueue_lock:
            answer = await self._transport.request("POST", _user_path(candidate.username), body=body,
                                                   allow=(400, 404, 500))
        if answer.status >= 400:
            raise ProviderError(f"slskd could not enqueue {what}: {answer.detail or answer.status}")
        enqueued = answer.body.get("enqueued") if isinstance(answer.body, dict) else None
        for row in enqueued if isinstance(enqueued, list) else []:
            if isinstance(row, dict) and row.get("filename") == candidate.filename:
                return mapping.to_transfer({"username": candidate.username, **row})
        existing = await self._unfinished(candidate)
        if existing is not None:
            return existing
        raise ProviderError(f"slskd did not enqueue {what}")

    async def enqueue_folder(self, username: str, files: Sequence[Candidate],
                             batch_id: str) -> tuple[list[Transfer], list[tuple[str, str]]]:
        """Ask slskd for ``files`` of one peer in one request; return ``(transfers, failures)``.

        slskd 0.26+ (version from ``GET /application``) gets one batch
        (``POST /transfers/downloads/batches`` with ``id`` ``batch_id``); older ones, or one
        answering the batch route 404/405 without a reason, the legacy per-user enqueue with all
        files. ``failures`` are ``(filename, reason)`` of files slskd refused; a file it already
        had unfinished (or a batch id it already had, after a restart) comes back as its existing
        transfer. Raises ProviderError when the peer is offline or slskd refuses the request,
        RateLimited (429) while another enqueue runs.
        """
        body = [{"filename": c.filename, "size": c.size} for c in files]
        async with self._enqueue_lock:
            if await self._batches_supported():
                answer = await self._transport.request(
                    "POST", BATCHES, allow=(400, 404, 405, 409, 500),
                    body={"id": batch_id, "username": username, "files": body,
                          "options": {"externalId": f"soulsync:{batch_id}"}})
                if answer.status in (404, 405) and not answer.detail:
                    self._batches = False  # a proxy or build without the route
                else:
                    return await self._batch_answer(username, files, answer)
            answer = await self._transport.request("POST", _user_path(username), body=body,
                                                   allow=(400, 404, 500))
        if answer.status >= 400:
            raise ProviderError(f"slskd could not enqueue {len(files)} file(s) from {username}: "
                                f"{answer.detail or answer.status}")
        enqueued = answer.body.get("enqueued") if isinstance(answer.body, dict) else None
        transfers = [mapping.to_transfer({"username": username, **row})
                     for row in (enqueued if isinstance(enqueued, list) else []) if isinstance(row, dict)]
        return await self._complete(username, files, transfers, {})

    async def _batch_answer(self, username: str, files: Sequence[Candidate],
                            answer: Any) -> tuple[list[Transfer], list[tuple[str, str]]]:
        if answer.status == 409:  # the batch exists: asked again after a restart
            return await self._complete(username, files, [], {})
        if answer.status >= 400:
            raise ProviderError(f"slskd could not enqueue {len(files)} file(s) from {username}: "
                                f"{answer.detail or answer.status}")
        body = answer.body if isinstance(answer.body, dict) else {}
        batch = body.get("batch") if isinstance(body.get("batch"), dict) else {}
        transfers = [mapping.to_transfer({"username": username, **row})
                     for row in batch.get("transfers") or [] if isinstance(row, dict)]
        failures = {str(f.get("filename")): " ".join(str(f.get("message") or "refused").split())
                    for f in body.get("failures") or [] if isinstance(f, dict)}
        return await self._complete(username, files, transfers, failures)

    async def _complete(self, username: str, files: Sequence[Candidate], transfers: list[Transfer],
                        failures: dict[str, str]) -> tuple[list[Transfer], list[tuple[str, str]]]:
        """Find the files slskd did not list as enqueued among its unfinished transfers."""
        got = {t.filename for t in transfers}
        missing = [c for c in files if c.filename not in got]
        if missing:
            answer = await self._transport.request("GET", _user_path(username), allow=(404,))
            existing = {t.filename: t for t in (mapping.transfers([answer.body])
                                                if answer.status != 404 else [])
                        if t.state in ("queued", "downloading")}
            for candidate in missing:
                if candidate.filename in existing:
                    transfers.append(existing[candidate.filename])
                else:
                    failures.setdefault(candidate.filename, "slskd did not enqueue it")
        return transfers, [(name, reason) for name, reason in failures.items() if name not in
                           {t.filename for t in transfers}]

    async def _batches_supported(self) -> bool:
        """True when slskd is 0.26 or newer (asked once; a failed probe means no)."""
        if self._batches is None:
            try:
                answer = await self._transport.request("GET", "/application")
                version = answer.body.get("version", {}) if isinstance(answer.body, dict) else {}
                numbers = re.findall(r"\d+", str(version.get("current") or ""))
                self._batches = tuple(int(n) for n in numbers[:2]) >= BATCH_VERSION
            except ProviderError as exc:
                log.warning("slskd version unknown (%s): enqueueing folders the legacy way", exc)
                return False
        return self._batches

    async def _unfinished(self, candidate: Candidate) -> Transfer | None:
        """Return slskd's queued or running transfer of this user's file, if it has one."""
        answer = await self._transport.request("GET", _user_path(candidate.username), allow=(404,))
        if answer.status == 404:
            return None
        for transfer in mapping.transfers([answer.body]):
            if transfer.filename == candidate.filename and transfer.state in ("queued", "downloading"):
                return transfer
        return None

    async def transfers(self) -> list[Transfer]:
        """Return every download slskd lists (all users), with one ``GET /transfers/downloads``."""
        answer = await self._transport.request("GET", DOWNLOADS)
        if not isinstance(answer.body, list):
            raise ProviderError("slskd answered its transfer list with something that is not a list")
        return mapping.transfers(answer.body)

    async def cancel(self, transfer: Transfer) -> None:
        """Cancel ``transfer`` and remove it from slskd's list (a finished one is only removed;
        its file stays). A transfer slskd no longer knows counts as removed."""
        await self._transport.request(
            "DELETE", f"{_user_path(transfer.username)}/{quote(transfer.id, safe='')}",
            params={"remove": "true"}, allow=(404,))

    async def local_file(self, transfer: Transfer) -> Path | None:
        """Return the file slskd saved for ``transfer`` under ``soulseek.download_path``, or None.

        See :func:`soulsync_slskd.layout.find_download` for the layout and the clash rule; the
        path is always inside the download folder. Raises NotConfigured when
        ``soulseek.download_path`` is not set, and ProviderError saying why when the file is
        reached only through a symbolic link out of the folder or its folder may not be read.
        """
        root = self._settings.get("soulseek.download_path")
        if not root:
            raise NotConfigured("soulseek.download_path is not set: SoulSync cannot see where "
                                "slskd saves downloads")
        try:
            return await asyncio.to_thread(layout.find_download, root, transfer.filename,
                                           transfer.size)
        except layout.Unusable as exc:
            raise ProviderError(str(exc)) from None
