"""The web app: a read-only JSON API over the history (pages come next), served by
``monitor web`` on its own. :func:`monitor.web.app.create_app` builds it from a config
and a store; :mod:`monitor.web.security` keeps it read-only and behind a password when
one is set; :mod:`monitor.web.api` answers with what the CLI's ``--json`` prints."""
