"""The Kafka change-stream consumer (`crm-etl consume shop-b`), kept alive by supervisord.

At least once: messages are handled in batches (by count or a short linger) and their offsets are
committed only after the whole batch is in the CRM (or rejected/parked in the state store); the
idempotent loader makes a redelivery harmless.

- A message that cannot be parsed or mapped is not retried: it becomes a `bad_record` reject and
  goes to the dead-letter topic with its origin and the error (Kafka Connect's DLQ convention).
- A transient failure (CRM unreachable, state store busy) pauses the partitions and retries the
  same batch with backoff, without committing; polling goes on while paused so the member is not
  thrown out of the group.
- SIGTERM (supervisord's stopsignal) finishes the current batch, commits and exits; a second
  signal exits at once.
- Static membership (`group.instance.id`) from --instance-id / CRM_ETL_INSTANCE, so a restart by
  supervisord does not rebalance the group.
- A rebalance while a batch is in hand (another consumer joins, one leaves): the batch is still
  loaded, but offsets are committed only for partitions this consumer still owns; a revoked
  partition's new owner reads those messages again from the last commit (harmless: idempotent
  load). Partitions assigned during a paused retry are paused too, and a message fetched while
  waiting is put back (seek), never dropped: a later commit must not cover a message not loaded.
- The broker restarting: the client reconnects by itself; a commit that fails meanwhile is logged
  and the messages come again (at least once).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etl import rejects
from etl.dto import Reject
from etl.secrets import scrub

log = logging.getLogger(__name__)


@dataclass
class ConsumerOptions:
    topic: str
    bootstrap: str
    group: str
    dlq_topic: str = ""                 # default: <topic>.dlq
    batch_size: int = 500               # messages per batch
    linger: float = 1.0                 # seconds to wait for a batch to fill
    max_messages: int | None = None     # stop after this many messages (tests, catch-ups)
    stop_when_idle: float | None = None  # stop after this many seconds without messages
    instance_id: str = ""               # static group membership
    session_timeout_ms: int = 45000
    pending_retry_s: float = 300.0      # retry parked records this often
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dlq(self) -> str:
        return self.dlq_topic or f"{self.topic}.dlq"


# What of a dead letter is copied to the DLQ: under the broker's default message.max.bytes (1 MB)
DLQ_MAX_BYTES = 900_000
DLQ_MAX_KEY_BYTES = 16_384


class Transient(Exception):
    """A batch could not be completed for a reason that will pass; retry it."""


def decode_message(value: bytes | None) -> tuple[Any, str]:
    """The JSON document of a message value, or (None, why it is unusable)."""
    if value is None:
        return None, "tombstone: the message has no value"
    if not value:
        return None, "empty message value"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"value is not UTF-8 (byte {e.start}: {value[e.start:e.start + 1]!r})"
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text), ""
    except ValueError as e:
        return None, f"value is not JSON: {e}"


class ChangeConsumer:
    """Owns the Kafka consumer, the DLQ producer and the batch loop; `process_batch` loads items."""

    def __init__(self, opts: ConsumerOptions, *, source: str, transformer: Any,
                 process_batch: Callable[[list], Counter], retry_pending: Callable[[], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        from confluent_kafka import Consumer, Producer

        self.opts = opts
        self.source = source
        self.transformer = transformer
        self.process_batch = process_batch
        self.retry_pending = retry_pending
        self.stop = stop or threading.Event()
        self.counts: Counter = Counter()
        conf: dict[str, Any] = {
            "bootstrap.servers": opts.bootstrap,
            "group.id": opts.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": opts.session_timeout_ms,
            "heartbeat.interval.ms": max(250, min(3000, opts.session_timeout_ms // 10)),
            "max.poll.interval.ms": 300000,
            "client.id": f"crm-etl-{socket.gethostname()}-{os.getpid()}",
        }
        if opts.instance_id:
            conf["group.instance.id"] = f"{opts.group}-{opts.instance_id}"
        conf.update(opts.extra)
        self.consumer = Consumer(conf, logger=log)
        self.producer = Producer({"bootstrap.servers": opts.bootstrap, "enable.idempotence": False,
                                  "linger.ms": 5}, logger=log)
        self._assignment: list = []

    # --- rebalance ------------------------------------------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:  # noqa: ANN001
        self._assignment = list(partitions)
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing")

    def _on_revoke(self, consumer, partitions) -> None:  # noqa: ANN001
        # The batch in hand is finished by the loop and its commit may fail for these partitions;
        # whoever gets them redelivers from the last commit (at least once, idempotent load).
        self._assignment = [p for p in self._assignment if p not in partitions]
        log.info("revoked %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> Counter:
        self.consumer.subscribe([self.opts.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        idle_since = time.monotonic()
        last_pending = time.monotonic()
        if self.retry_pending:
            self._retrying(self.retry_pending)
        try:
            while not self.stop.is_set():
                batch = self._collect()
                if not batch and not self._assignment:
                    idle_since = time.monotonic()  # still joining the group: not idle yet
                    continue
                if not batch:
                    if self.opts.stop_when_idle is not None and \
                            time.monotonic() - idle_since >= self.opts.stop_when_idle:
                        log.info("no messages for %.1f s: stopping", self.opts.stop_when_idle)
                        break
                    continue
                idle_since = time.monotonic()
                if not self._handle(batch):
                    break  # stopped while retrying: nothing committed, redelivered on restart
                self._commit(batch)
                self.counts["messages"] += len(batch)
                if self.opts.max_messages and self.counts["messages"] >= self.opts.max_messages:
                    log.info("handled %d messages: stopping (--max-messages)", self.counts["messages"])
                    break
                if self.retry_pending and time.monotonic() - last_pending >= self.opts.pending_retry_s:
                    last_pending = time.monotonic()
                    self._retrying(self.retry_pending)
        finally:
            self.close()
        return self.counts

    def _collect(self) -> list:
        """Up to batch_size messages, waiting at most `linger` once the first has arrived."""
        from confluent_kafka import KafkaError, KafkaException

        batch: list = []
        want = self.opts.batch_size
        if self.opts.max_messages:
            want = min(want, self.opts.max_messages - self.counts["messages"])
        deadline: float | None = None
        while len(batch) < want and not self.stop.is_set():
            timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            for msg in self.consumer.consume(num_messages=want - len(batch), timeout=timeout):
                err = msg.error()
                if err is None:
                    batch.append(msg)
                elif err.code() == KafkaError._PARTITION_EOF:
                    continue
                elif err.fatal():
                    raise KafkaException(err)
                else:
                    log.warning("Kafka: %s", err)
            if batch and deadline is None:
                deadline = time.monotonic() + self.opts.linger
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not batch:
                break  # nothing within the poll timeout: let the caller check idle/stop
        return batch

    def _items(self, batch: list) -> tuple[list, list[tuple[Any, str]]]:
        items: list = []
        dead: list[tuple[Any, str]] = []
        for msg in batch:
            origin = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
            event, why = decode_message(msg.value())
            if event is None:
                items.append(Reject(self.source, origin, "record", rejects.BAD_RECORD, why,
                                    raw=_raw(msg)))
                dead.append((msg, why))
                continue
            try:
                out = list(self.transformer.transform_event(event))
            except Exception as e:  # noqa: BLE001 - a transformer bug must not stop the stream
                why = f"transform failed: {type(e).__name__}: {e}"
                items.append(Reject(self.source, origin, "record", rejects.BAD_RECORD, why, raw=_raw(msg)))
                dead.append((msg, why))
                continue
            bad = next((o for o in out if isinstance(o, Reject) and o.reason == rejects.BAD_RECORD
                        and o.kind in ("record", "company")), None)
            if bad is not None:
                dead.append((msg, bad.detail))
            items.extend(out)
        return items, dead

    def _handle(self, batch: list) -> bool:
        """Load a batch; retry transient failures with backoff. False if stopped while retrying."""
        items, dead = self._items(batch)
        ok = self._retrying(lambda: self.counts.update(self.process_batch(items)))
        if not ok:
            return False
        if dead:
            self._dead_letters(dead)
        self.counts["dead_lettered"] += len(dead)
        return True

    def _retrying(self, work: Callable[[], Any]) -> bool:
        delay = 1.0
        while True:
            try:
                work()
                return True
            except Transient as e:
                log.warning("batch not completed, retrying in %.0f s (offsets not committed): %s", delay, scrub(str(e)))
                self.counts["transient_retries"] += 1
                if not self._paused_wait(delay):
                    return False
                delay = min(delay * 2, 60.0)

    def _paused_wait(self, seconds: float) -> bool:
        """Wait with the partitions paused but polling (stays in the group). False if stopped.

        A rebalance meanwhile assigns partitions that are not paused: a message they deliver is
        put back (seek to it) and its partition paused, so it is read again after the wait."""
        from confluent_kafka import TopicPartition

        # everything paused here is resumed at the end, owned by then or not: librdkafka keeps a
        # partition's pause across a revoke, and a partition coming back paused would never be read
        paused = {(tp.topic, tp.partition) for tp in self._assignment}
        if paused:
            self.consumer.pause(list(self._assignment))
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if self.stop.is_set():
                    return False
                for msg in self.consumer.consume(num_messages=1, timeout=min(0.5, max(0.0, end - time.monotonic()))):
                    if msg.error() is None:
                        back = TopicPartition(msg.topic(), msg.partition(), msg.offset())
                        self.consumer.pause([back])
                        self.consumer.seek(back)
                        paused.add((back.topic, back.partition))
                        self.counts["put_back_while_paused"] += 1
                        log.info("%s[%d] was assigned while a batch waits: offset %d put back for later",
                                 back.topic, back.partition, back.offset)
            return True
        finally:
            if paused:
                self.consumer.resume([TopicPartition(t, p) for t, p in sorted(paused)])

    def _dead_letters(self, dead: list[tuple[Any, str]]) -> None:
        for msg, why in dead:
            headers = [("crm-etl.origin.topic", msg.topic().encode()),
                       ("crm-etl.origin.partition", str(msg.partition()).encode()),
                       ("crm-etl.origin.offset", str(msg.offset()).encode()),
                       ("crm-etl.error", scrub(why)[:1000].encode("utf-8", "replace")),
                       ("crm-etl.failed-at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode())]
            key, value = msg.key(), msg.value()
            if len(key or b"") + len(value or b"") > DLQ_MAX_BYTES:
                # a message bigger than the broker takes (1 MB by default) would fail the produce,
                # the batch would never be committed and the partition would be stuck on it: the
                # DLQ gets its head; the whole of it stays at its origin offset
                headers.append(("crm-etl.truncated-from", str(len(value or b"")).encode()))
                key, value = (key or b"")[:DLQ_MAX_KEY_BYTES] or None, (value or b"")[:DLQ_MAX_BYTES]
            self.producer.produce(self.opts.dlq, key=key, value=value, headers=headers)
        left = self.producer.flush(30)
        if left:
            raise RuntimeError(f"{left} dead letters not acknowledged by the broker within 30 s")

    def _commit(self, batch: list) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        last: dict[tuple[str, int], int] = {}
        for msg in batch:
            key = (msg.topic(), msg.partition())
            last[key] = max(last.get(key, -1), msg.offset())
        owned = {(tp.topic, tp.partition) for tp in self._assignment}
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items() if (t, p) in owned]
        if len(offsets) < len(last):
            # revoked while the batch was loaded: not ours to commit (it could move the new owner's
            # offset back, or past what it has not loaded yet); the new owner reads them again
            log.info("not committing %d partition(s) revoked during the batch: their new owner reads them again",
                     len(last) - len(offsets))
            self.counts["commits_skipped_revoked"] += len(last) - len(offsets)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            # e.g. the partitions were revoked meanwhile: their new owner redelivers (idempotent)
            log.warning("commit failed (will be redelivered): %s", e)
            self.counts["commit_failures"] += 1

    def close(self) -> None:
        try:
            self.producer.flush(10)
        finally:
            self.consumer.close()


def _raw(msg: Any) -> dict[str, Any]:
    value = msg.value()
    return {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
            "key": msg.key().decode("utf-8", "replace") if msg.key() else None,
            "value": value.decode("utf-8", "replace")[:65536] if value else value}
