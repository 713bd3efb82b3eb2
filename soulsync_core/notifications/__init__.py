"""Notifications fed by the event bus: Apprise targets and signed webhooks, with a delivery log.

:mod:`.service` holds the notifier, :mod:`.targets` the settings' validation, :mod:`.webhook`
the signed POST, :mod:`.apprise_send` Apprise in a worker thread, :mod:`.log` the delivery log.
"""
