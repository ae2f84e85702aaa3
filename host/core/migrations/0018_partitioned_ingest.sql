-- Device ingest that scales out (issue 26): readings partitioned over the replicas through a
-- NATS JetStream stream, each partition evaluated by one replica at a time.

-- How far each partition of an ingest stream has been evaluated and written: the batch
-- writer updates it in the transaction that writes those readings' telemetry, so a replica
-- taking a partition over reads on from exactly there.
CREATE TABLE device_ingest_offsets (
    stream        TEXT NOT NULL,
    partition_no  INTEGER NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (stream, partition_no)
);

-- Since when a `duration` rule's raise condition has held for a device (NULL: it does not
-- hold), written with the telemetry; a replica taking the device over goes on with the
-- window instead of starting it again. Single-replica and lease ingest keep it too.
CREATE TABLE alarm_windows (
    rule_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    since      BIGINT,
    PRIMARY KEY (rule_id, device_id)
);

-- One open alarm per rule and device: the state machine never opens a second one, and the
-- database now holds two replicas to that too while a partition changes hands. Should an
-- older database hold two open ones (it should not), the older is closed as of its raise
-- so the index can be built.
UPDATE alarms SET status = 'cleared', cleared_at = raised_at
    WHERE status <> 'cleared'
      AND id NOT IN (SELECT MAX(id) FROM alarms WHERE status <> 'cleared' GROUP BY rule_id, device_id);
CREATE UNIQUE INDEX alarms_one_open ON alarms(rule_id, device_id) WHERE status <> 'cleared';
