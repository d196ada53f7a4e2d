"""Each write request is one transaction: it commits whole, or leaves nothing behind."""

from django.db import transaction

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class AtomicWriteRequests:
    """Run POST/PUT/PATCH/DELETE in one transaction, rolled back if the answer is a 5xx.

    Unlike ATOMIC_REQUESTS it leaves reads alone (no BEGIN/COMMIT on every page), and it also
    rolls back when the failure was turned into a response (Django's 500 page), not only when an
    exception escapes: a request that answers 500 has written nothing. A 4xx keeps what it
    recorded on purpose (a lockout event); the services refuse before they write. Work that
    must wait for the commit (the broker, the channel layer, Celery) already uses on_commit.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in SAFE_METHODS:
            return self.get_response(request)
        with transaction.atomic():
            response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True)
        return response
