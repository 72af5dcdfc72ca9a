"""Django's PostgreSQL backend, with a kept connection checked before reuse without a round trip.

Django's health check (CONN_HEALTH_CHECKS) sends `SELECT 1` before the first statement of every request and task:
one more round trip on every request. A server that restarts or ends a backend sends its FATAL message and closes
the socket, so an idle connection that has nothing to read is still open at the other end; one that has something
(that message, the close, or a notice) is checked by the round trip as before. A server gone without a word (a
host lost with no FIN) is found by the first statement instead: that request answers 503, and its connection is
closed after it.
"""
import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if (connection.pgconn.status != pq.ConnStatus.OK
                or connection.info.transaction_status != pq.TransactionStatus.IDLE):
            return super().is_usable()
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0) or super().is_usable()
