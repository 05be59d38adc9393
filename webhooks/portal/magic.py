"""Magic links: single-use, expiring, signed URLs opening a portal session for one scope.

(To be written: ``magic_link(scope, ...)``, the view consuming a link, ``session_access``.)
"""

from __future__ import annotations


def session_access(request):
    """The portal access of the request's magic-link session, or None."""
    return None
